"""mdns on the network: UDP and TCP sockets on one address and port, each
request answered by a :class:`~zoneflow.mdns.responder.Responder` on small
thread pools of its own: one for datagrams, one for TCP clients (transfers).

Storage is synchronous, so answering never runs on the event loop, nor takes
threads from the process embedding mdns (all-in-one). What keeps a flood or
a slow client from hurting others lives here too: a cap on datagrams being
answered and a bound on how long one may wait for a thread, NOTIFYs held to
``[mdns] notify_rate`` per (source, zone) apart from queries
(:mod:`zoneflow.mdns.notify_limit`), transfers on threads of their own so
that no backlog of datagrams stands in front of them, a timeout on every TCP
read and write, and transfers sent a batch at a time as the client takes
them. See :mod:`zoneflow.mdns` for what mdns answers and doc/mdns.md for the
whole picture.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar, cast

from zoneflow import heartbeat
from zoneflow.mdns import notify_limit, options, shared_ports
from zoneflow.mdns.access import address as _address
from zoneflow.mdns.access import peer as _peer
from zoneflow.mdns.notify import notify_key
from zoneflow.mdns.responder import Responder
from zoneflow.storage import db

LOG = logging.getLogger(__name__)
CONF = options.CONF
T = TypeVar("T")

# Datagrams being answered at once; past it new ones are dropped (the client
# retries), so a flood cannot queue unbounded work behind the thread pool.
MAX_PENDING_UDP = 1000
# Seconds a datagram may wait for a thread. A nameserver asks an SOA again
# after 2 s (BIND's first retry): an answer later than that is work for
# nobody, and one that waited longer would be, so it is dropped. The count
# above bounds what is queued; this bounds how long the queue takes to drain,
# whatever each answer costs, and keeps the answers mdns does give in time.
MAX_UDP_WAIT = 1.5
# The kernel's receive buffer asked for mdns's UDP socket. A batch of changes on a
# pool of 8 targets brings mdns two datagrams a zone from each target at once (its
# SOA query, its NOTIFY of the serial it loaded): 640 for 40 zones, while the
# default buffer (212,992 bytes) holds 256 small datagrams. The kernel dropped the
# rest while mdns was busy, and BIND9 asks again only 5 s later (its UDP retry).
# Linux caps it at net.core.rmem_max.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
# NOTIFYs being answered at once, apart from the queries above: however many
# sources and zones a flood names, NOTIFYs never take the queries' places.
MAX_PENDING_NOTIFY = 64
# Threads answering NOTIFYs, apart from the queries' pool: a target's NOTIFY says
# it serves a serial (a word the polls wait for), and under load it waited behind
# a backlog of SOA queries in one queue. Most need no database (caches.ZoneRows).
NOTIFY_THREADS = 2
# (source, zone) pairs whose NOTIFY rate is tracked; NOTIFYs from pairs past
# it are dropped until some fall idle (a flood of spoofed sources).
MAX_NOTIFY_PAIRS = 10_000
# Transfer messages made per trip to the thread pool: few enough that a slow
# client holds little in mdns's buffers, many enough that the trips are cheap.
SEND_BATCH = 8
# How often the transfers served are written to storage (zone_transfers):
# a nameserver transferring a zone in a loop costs one write a second at most.
TRANSFER_LOG_SECONDS = 1.0


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: MdnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn_udp(self, data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error about an earlier reply: the client has gone away.
        LOG.debug("mdns UDP error: %s", exc)


def _widen_receive_buffer(sock: socket.socket) -> None:
    """Ask for :data:`UDP_RECEIVE_BUFFER`; say so when the kernel gives less."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    # Linux reports twice what it was given (its own bookkeeping on top).
    given = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if given < UDP_RECEIVE_BUFFER:
        LOG.warning(
            "mdns's UDP receive buffer is %d bytes, not the %d asked for: a burst of "
            "queries from many targets may be dropped. Raise the kernel's limit: "
            "sysctl -w net.core.rmem_max=%d",
            given,
            UDP_RECEIVE_BUFFER,
            UDP_RECEIVE_BUFFER,
        )


def _close_after(sock: socket.socket, answering: list[concurrent.futures.Future[None]]) -> None:
    concurrent.futures.wait(answering)
    sock.close()


def _take(replies: Iterator[bytes], count: int) -> list[bytes]:
    return list(itertools.islice(replies, count))


_Datagram = tuple[_UdpProtocol, bytes, tuple[str, int]]


class MdnsServer:
    """mdns on one address and port, UDP and TCP, answering from storage."""

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host: str = host or CONF.mdns.host
        self.port: int = CONF.mdns.port if port is None else port
        self.responder = Responder()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._notify_executor: concurrent.futures.ThreadPoolExecutor | None = None
        # TCP clients' requests (transfers, mostly) on threads of their own: a
        # backlog of datagrams never stands between a transfer's batches.
        self._tcp_executor: concurrent.futures.ThreadPoolExecutor | None = None
        # The UDP socket's twin that pool threads send replies from.
        self._udp_out: socket.socket | None = None
        # The loop serving, for pool threads to hand it work.
        self._running_loop: asyncio.AbstractEventLoop | None = None
        # Datagrams handed to the pool and not yet answered.
        self._udp_pending: set[concurrent.futures.Future[None]] = set()
        self._notify_pending: set[concurrent.futures.Future[None]] = set()
        self.notifies: notify_limit.NotifyLimiter[_Datagram] = notify_limit.NotifyLimiter(
            rate=CONF.mdns.notify_rate, burst=CONF.mdns.notify_burst, max_keys=MAX_NOTIFY_PAIRS
        )
        self._busy_logged = 0.0
        self._late_logged = 0.0
        self._late = 0
        # Datagrams in progress, most since the heartbeat last asked.
        self._udp_peak = 0
        self._notify_busy_logged = 0.0
        # Ports that ask two questions at once, and questions asked again (see the
        # module); the first get their answers again unless told otherwise.
        self.shared_ports = shared_ports.SharedPorts()
        self._send_copies_to_shared_ports = CONF.mdns.repeat_to_shared_ports
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._log_writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Listen on UDP and TCP; with port 0, ``self.port`` becomes the port picked."""
        loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=CONF.mdns.threads, thread_name_prefix="mdns"
        )
        self._tcp_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=CONF.mdns.tcp_threads, thread_name_prefix="mdns-tcp"
        )
        self._notify_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=NOTIFY_THREADS, thread_name_prefix="mdns-notify"
        )
        # Port 0 gives a TCP port that may be taken for UDP: then try another.
        for attempt in range(20):
            tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
            port = int(tcp.sockets[0].getsockname()[1])
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, port)
                )
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if self.port != 0 or attempt == 19:
                    raise
                continue
            break
        self._tcp, self._udp, self.port = tcp, udp, port
        _widen_receive_buffer(udp.get_extra_info("socket"))
        self._udp_out = udp.get_extra_info("socket").dup()
        self._running_loop = loop
        self._log_writer = asyncio.ensure_future(self._write_transfer_log())
        LOG.info("mdns listening on %s:%s (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end open connections and requests in progress."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        tasks = list(self._tcp_tasks)
        for task in tasks:
            task.cancel()
        # Awaited, not just cancelled: a task left pending when the loop
        # closes would be destroyed half-way. (And from Python 3.12 on, the
        # server's wait_closed() waits for its connections to end.)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None
        if self._log_writer is not None:
            self._log_writer.cancel()
            await asyncio.gather(self._log_writer, return_exceptions=True)
            self._log_writer = None
            # What the last second served, so a poll reading it is not left short.
            with contextlib.suppress(Exception):
                await self._in_pool(self.responder.transfer_log.flush)
        for executor in (self._executor, self._tcp_executor, self._notify_executor):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._tcp_executor = self._notify_executor = None
        out, self._udp_out = self._udp_out, None
        if out is not None:
            # Closed once no thread may still send from it: a descriptor closed under
            # a thread's send could be another socket's by then.
            answering = [*self._udp_pending, *self._notify_pending]
            threading.Thread(
                target=_close_after, args=(out, answering), name="mdns-udp-close", daemon=True
            ).start()
        self._running_loop = None

    async def _write_transfer_log(self) -> None:
        """Write the transfers served to storage once a second, when there are any."""
        log = self.responder.transfer_log
        while True:
            await asyncio.sleep(TRANSFER_LOG_SECONDS)
            if log.pending():
                await self._in_pool(log.flush)

    async def _in_pool(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _in_tcp_pool(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._tcp_executor, call)

    def queries_in_progress_peak(self) -> int:
        """The most datagrams in progress at once since the last call (the heartbeat's)."""
        peak, self._udp_peak = self._udp_peak, len(self._udp_pending)
        return peak

    def _answer_datagram(
        self, wire: bytes, addr: object, received: float, notify: bool = False
    ) -> list[bytes] | None:
        """The replies to a datagram, or None if it waited past ``MAX_UDP_WAIT`` for
        this thread: then its client has moved on, and it is dropped unread. A
        ``notify`` is never dropped (see _notify_udp)."""
        if not notify and time.monotonic() - received > MAX_UDP_WAIT:
            return None
        return list(
            self.responder.answer(wire, tcp=False, peer=_peer(addr), address=_address(addr))
        )

    def _spawn_udp(self, protocol: _UdpProtocol, data: bytes, addr: tuple[str, int]) -> None:
        key = notify_key(data, addr)
        if key is not None:
            self._notify_udp(key, (protocol, data, addr))
            return
        if len(self._udp_pending) >= MAX_PENDING_UDP:
            now = time.monotonic()
            if now - self._busy_logged >= 1.0:  # once a second, not once a datagram
                self._busy_logged = now
                LOG.warning(
                    "mdns is busy: %d queries in progress, dropping new ones", MAX_PENDING_UDP
                )
            return
        self._start_udp(self._udp_pending, (protocol, data, addr))
        self._udp_peak = max(self._udp_peak, len(self._udp_pending))

    def _start_udp(
        self,
        pending: set[concurrent.futures.Future[None]],
        datagram: _Datagram,
        *,
        notify: bool = False,
    ) -> None:
        """Hand a datagram to a thread, which answers and sends the replies itself.

        Straight to the pool (the NOTIFYs' own for a ``notify``), and the replies
        sent from the thread: no task, no asyncio future, no wake of the event
        loop to send. That trip cost as much CPU as answering an SOA query does."""
        executor = self._notify_executor if notify else self._executor
        assert executor is not None
        try:
            future = executor.submit(self._answer_udp, *datagram, time.monotonic(), notify)
        except RuntimeError:
            return  # stopping: the pool no longer takes work
        pending.add(future)
        future.add_done_callback(pending.discard)

    def _notify_udp(self, key: notify_limit.Key, datagram: _Datagram) -> None:
        """Answer a NOTIFY now if its (source, zone) is within its rate, else later.

        One past the rate is held (replacing any held before it) and
        answered when the rate allows: a flood costs one answer per turn,
        and the newest serial announced is the one processed. A NOTIFY is
        never dropped for waiting long for a thread, as a query is: the
        limiter already bounds how many wait (MAX_PENDING_NOTIFY), and the
        newest one must be processed however late (on a busy machine a held
        NOTIFY's wait once passed MAX_UDP_WAIT, and its serial was lost).
        """
        now = time.monotonic()
        busy = len(self._notify_pending) >= MAX_PENDING_NOTIFY
        if not busy and self.notifies.admit(key, now):
            self._start_udp(self._notify_pending, datagram, notify=True)
            return
        if busy:
            self._log_notify_busy(now)
        delay = self.notifies.hold(key, datagram, now)
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, self._release_notify, key)

    def _release_notify(self, key: notify_limit.Key) -> None:
        if self._udp is None:
            return  # stopped meanwhile
        now = time.monotonic()
        if len(self._notify_pending) >= MAX_PENDING_NOTIFY:
            # Still busy: keep it held, and try again in a turn.
            self._log_notify_busy(now)
            asyncio.get_running_loop().call_later(1 / self.notifies.rate, self._release_notify, key)
            return
        datagram = self.notifies.release(key, now)
        if datagram is not None:
            self._start_udp(self._notify_pending, datagram, notify=True)

    def _log_notify_busy(self, now: float) -> None:
        if now - self._notify_busy_logged >= 1.0:  # once a second, not once a datagram
            self._notify_busy_logged = now
            LOG.warning(
                "mdns is busy: %d NOTIFYs in progress, holding new ones", MAX_PENDING_NOTIFY
            )

    def _answer_udp(
        self,
        protocol: _UdpProtocol,
        data: bytes,
        addr: tuple[str, int],
        received: float,
        notify: bool,
    ) -> None:
        """On a pool thread: answer a datagram and send the replies from its socket."""
        try:
            replies = self._answer_datagram(data, addr, received, notify)
            if replies is None:
                self._call_in_loop(self._log_late)
                return
            out, transport = self._udp_out, protocol.transport
            if out is None or transport is None or transport.is_closing():
                return  # stopped meanwhile
            for reply in replies:
                try:
                    out.sendto(reply, addr)
                except BlockingIOError:
                    # The socket's send buffer is full: the transport queues it.
                    self._call_in_loop(functools.partial(transport.sendto, reply, addr))
            if replies:  # a NOTIFY's too: BIND9 sends those from such sockets as well
                (query_id,) = struct.unpack_from("!H", data)
                again = self.shared_ports.answered(addr[:2], query_id, replies, time.monotonic())
                if again and self._send_copies_to_shared_ports:
                    self._call_in_loop(functools.partial(self._repeat, again, addr))
        except OSError as exc:
            LOG.debug("mdns could not send a UDP reply to %s: %s", _peer(addr), exc)
        except Exception:
            LOG.exception("mdns failed to answer %s over UDP", _peer(addr))

    def _repeat(self, replies: list[bytes], addr: tuple[str, int]) -> None:
        """On the loop: send ``replies`` to ``addr`` again at each of REPEAT_AFTER."""
        loop = asyncio.get_running_loop()
        for delay in shared_ports.REPEAT_AFTER:
            loop.call_later(delay, self._send_copies, replies, addr)

    def _send_copies(self, replies: list[bytes], addr: tuple[str, int]) -> None:
        out = self._udp_out
        if out is None:
            return  # stopped meanwhile
        for reply in replies:
            try:
                out.sendto(reply, addr)
            except OSError as exc:  # a copy lost is a copy: the first one went
                LOG.debug("mdns could not send a copy to %s: %s", _peer(addr), exc)
                return

    def _call_in_loop(self, call: Callable[[], object]) -> None:
        """Run ``call`` on the event loop, from a pool thread (unless stopped)."""
        loop = self._running_loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(call)

    def _log_late(self) -> None:
        self._late += 1
        now = time.monotonic()
        if now - self._late_logged >= 1.0:  # once a second, not once a datagram
            self._late_logged, late, self._late = now, self._late, 0
            LOG.warning(
                "mdns is behind: dropped %d queries that waited over %.1f s for a thread "
                "(their clients have asked again)",
                late,
                MAX_UDP_WAIT,
            )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one TCP client: many queries in turn, each reply in full before the next.

        Every read and every write waits at most ``tcp_timeout``, so an idle,
        slow or stuck client loses its connection and holds nothing else up.
        """
        addr = writer.get_extra_info("peername")
        peer, address = _peer(addr), _address(addr)
        timeout = CONF.mdns.tcp_timeout
        task = asyncio.current_task()
        if task is not None:
            self._tcp_tasks.add(task)
        try:
            while True:
                # asyncio.timeout, not wait_for: wait_for makes a task of every read.
                try:
                    async with asyncio.timeout(timeout):
                        header = await reader.readexactly(2)
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection between queries
                (length,) = struct.unpack("!H", header)
                async with asyncio.timeout(timeout):
                    wire = await reader.readexactly(length)
                key = notify_key(wire, addr)
                if key is not None:
                    # A client that waits for each answer is slowed to the rate.
                    wait = self.notifies.reserve(key, time.monotonic(), longest=timeout)
                    if wait is None:
                        LOG.warning(
                            "closed TCP client %s: NOTIFYs far past [mdns] notify_rate", peer
                        )
                        return
                    await asyncio.sleep(wait)
                call = functools.partial(self._answer_tcp, wire, peer=peer, address=address)
                await self._send(*await self._in_tcp_pool(call), writer, timeout)
        except TimeoutError:
            LOG.debug("closed idle or slow TCP client %s", peer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            LOG.debug("TCP client %s went away", peer)
        except Exception:
            LOG.exception("mdns failed serving TCP client %s", peer)
        finally:
            if task is not None:
                self._tcp_tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer_tcp(
        self, wire: bytes, *, peer: str, address: str | None
    ) -> tuple[Iterator[bytes], list[bytes]]:
        """A TCP request's replies: the first batch made, and the stream of the rest.

        One trip to the pool answers a query or a small zone's whole transfer."""
        replies = iter(self.responder.answer(wire, tcp=True, peer=peer, address=address))
        return replies, _take(replies, SEND_BATCH)

    async def _send(
        self,
        replies: Iterator[bytes],
        batch: list[bytes],
        writer: asyncio.StreamWriter,
        timeout: float,
    ) -> None:
        """Write ``batch``, then the rest of ``replies`` as the pool makes them, waiting
        for the client to take each batch.

        A transfer's stream reads the database on the TCP pool's threads, a
        batch of messages at a time; waiting for the socket to drain between
        batches keeps a slow client from making mdns buffer the zone.
        """
        ended = False
        try:
            while True:
                for reply in batch:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                async with asyncio.timeout(timeout):
                    await writer.drain()
                if len(batch) < SEND_BATCH:
                    ended = True  # the stream ran out, and ended its transaction itself
                    return
                batch = await self._in_tcp_pool(functools.partial(_take, replies, SEND_BATCH))
        finally:
            close = getattr(replies, "close", None)
            if not ended and close is not None:
                # Ends the stream's database transaction, on a pool thread.
                await self._in_tcp_pool(close)

    # -- embedding in a synchronous process ------------------------------------------

    def start_in_thread(self) -> None:
        """Serve from a daemon thread with its own event loop; return once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                loop.close()
                return
            finally:
                ready.set()
            try:
                loop.run_forever()
                loop.run_until_complete(self.stop())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="mdns", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._loop = self._thread = None
            raise failure[0]

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop what :meth:`start_in_thread` started and wait for its thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has already ended
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = self._thread = None


def run(host: str | None = None, port: int | None = None) -> None:
    """``zoneflow mdns``: serve until SIGINT or SIGTERM."""
    # Each thread may hold a connection at once, the transfer log's writer too.
    db.keep_connections(CONF.mdns.threads + CONF.mdns.tcp_threads + 1)

    async def main() -> None:
        server = MdnsServer(host, port)
        await server.start()
        beat = heartbeat.for_mdns(server)
        beat.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await stopping.wait()
        finally:
            beat.stop()
            await server.stop()
            LOG.info("mdns stopped")

    asyncio.run(main())
