"""mdns: the authoritative mini-DNS that nameservers transfer zones from.

It answers from storage, so a change is served the moment its transaction
commits: SOA (UDP and TCP), other queries for the zones it holds, AXFR over
TCP (streamed in several messages), IXFR answered with the whole zone (RFC
1995 allows it) or a single SOA when the client is current, NOTIFY with an
acknowledgement. REFUSED for zones it does not hold, NOTIMP for other
opcodes, FORMERR for what cannot be parsed. Storage is synchronous, so each
request is answered on a worker thread and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import struct
import threading
from collections.abc import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
from oslo_config import cfg

from zoneflow import objects
from zoneflow.dns import zone as dns_zone
from zoneflow.storage import api as storage

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

mdns_opts = [
    cfg.StrOpt("host", default="127.0.0.1", help="Address mdns listens on (UDP and TCP)."),
    cfg.PortOpt("port", default=5354, help="Port mdns listens on; 0 picks a free one."),
    cfg.FloatOpt("tcp_timeout", default=10.0, min=0.1, help="Seconds an idle TCP client is kept."),
    cfg.IntOpt("axfr_records_per_message", default=500, min=1, help="Records per AXFR message."),
]
CONF.register_opts(mdns_opts, group="mdns")


def _refused(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response


def _formerr(wire: bytes) -> bytes | None:
    """A FORMERR reply echoing the id of a message we could not parse (if any)."""
    if len(wire) < 12:
        return None
    (query_id,) = struct.unpack("!H", wire[:2])
    response = dns.message.Message(id=query_id)
    response.flags = dns.flags.QR
    response.set_rcode(dns.rcode.FORMERR)
    return bytes(response.to_wire())


class Responder:
    """Turns one request into its reply messages (several for AXFR)."""

    def answer(self, wire: bytes, *, tcp: bool) -> list[bytes]:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            reply = _formerr(wire)
            return [reply] if reply else []
        try:
            return [bytes(m.to_wire(max_size=65535)) for m in self._messages(query, tcp)]
        except Exception:
            LOG.exception("mdns failed to answer %s", query.question)
            return [bytes(_refused(query, dns.rcode.SERVFAIL).to_wire())]

    def _messages(self, query: dns.message.Message, tcp: bool) -> Iterable[dns.message.Message]:
        opcode = query.opcode()
        if opcode == dns.opcode.NOTIFY:
            return [self._notify(query)]
        if opcode != dns.opcode.QUERY:
            return [_refused(query, dns.rcode.NOTIMP)]
        if len(query.question) != 1:
            return [_refused(query, dns.rcode.FORMERR)]
        question = query.question[0]
        if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self._transfer(query, question, tcp)
        return [self._query(query, question)]

    def _notify(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.question:
            LOG.info("NOTIFY for %s received", query.question[0].name)
        return response

    def _find(self, name: dns.name.Name) -> tuple[objects.Zone, objects.Pool] | None:
        """The zone holding ``name`` (its closest enclosing zone in storage)."""
        candidate = name
        while len(candidate.labels) > 1:
            zone = storage.find_zone_for_mdns(candidate.to_text().lower())
            if zone is not None:
                return zone, storage.get_pool(zone.pool_id)
            candidate = candidate.parent()
        return None

    def _query(self, query: dns.message.Message, question: dns.rrset.RRset) -> dns.message.Message:
        found = self._find(question.name)
        if found is None:
            return _refused(query, dns.rcode.REFUSED)
        zone, pool = found
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.flags &= ~dns.flags.RA
        apex = dns_zone.zone_origin(zone)
        if question.name == apex and question.rdtype == dns.rdatatype.SOA:
            response.answer.append(dns_zone.soa_rrset(zone, pool))
            return response
        at_name = [rrset for rrset in self._rrsets(zone, pool) if rrset.name == question.name]
        matching = [
            r
            for r in at_name
            if r.rdtype == question.rdtype or question.rdtype == dns.rdatatype.ANY
        ]
        cname = [r for r in at_name if r.rdtype == dns.rdatatype.CNAME]
        if matching:
            response.answer.extend(matching)
        elif cname:
            response.answer.extend(cname)
        else:
            if not at_name:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns_zone.soa_rrset(zone, pool))
        return response

    def _rrsets(self, zone: objects.Zone, pool: objects.Pool) -> list[dns.rrset.RRset]:
        return list(dns_zone.iter_rrsets(zone, pool, storage.list_recordsets(zone.id)))

    def _transfer(
        self, query: dns.message.Message, question: dns.rrset.RRset, tcp: bool
    ) -> list[dns.message.Message]:
        found = self._find(question.name)
        if found is None or found[0].name != question.name.to_text().lower():
            return [_refused(query, dns.rcode.REFUSED)]
        zone, pool = found
        if question.rdtype == dns.rdatatype.IXFR and self._client_is_current(query, zone):
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            response.answer.append(dns_zone.soa_rrset(zone, pool))
            return [response]
        if not tcp:
            # Transfers are TCP only (RFC 5936); a truncated reply tells the client to switch.
            response = dns.message.make_response(query)
            response.flags |= dns.flags.TC
            return [response]
        rrsets = self._rrsets(zone, pool)
        rrsets.append(dns_zone.soa_rrset(zone, pool))
        return self._chunk(query, rrsets)

    @staticmethod
    def _client_is_current(query: dns.message.Message, zone: objects.Zone) -> bool:
        for rrset in query.authority:
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                return int(rrset[0].serial) >= zone.serial
        return False

    @staticmethod
    def _chunk(
        query: dns.message.Message, rrsets: list[dns.rrset.RRset]
    ) -> list[dns.message.Message]:
        limit = CONF.mdns.axfr_records_per_message
        messages: list[dns.message.Message] = []
        current = dns.message.make_response(query)
        current.flags |= dns.flags.AA
        count = 0
        for rrset in rrsets:
            if count and count + len(rrset) > limit:
                messages.append(current)
                current = dns.message.make_response(query)
                current.flags |= dns.flags.AA
                current.question = []
                count = 0
            current.answer.append(rrset)
            count += len(rrset)
        messages.append(current)
        return messages


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: MdnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.ensure_future(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        replies = await asyncio.to_thread(self.server.responder.answer, data, tcp=False)
        if self.transport is not None:
            for reply in replies:
                self.transport.sendto(reply[:65507], addr)


class MdnsServer:
    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host or CONF.mdns.host
        self.port = CONF.mdns.port if port is None else port
        self.responder = Responder()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
        )
        LOG.info("mdns listening on %s:%s (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), CONF.mdns.tcp_timeout)
                (length,) = struct.unpack("!H", header)
                wire = await asyncio.wait_for(reader.readexactly(length), CONF.mdns.tcp_timeout)
                replies = await asyncio.to_thread(self.responder.answer, wire, tcp=True)
                for reply in replies:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start_in_thread(self) -> None:
        """Serve from a daemon thread with its own event loop; return once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="mdns", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


def run(host: str | None = None, port: int | None = None) -> None:
    """`zoneflow mdns`: serve until SIGINT or SIGTERM."""

    async def main() -> None:
        server = MdnsServer(host, port)
        await server.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await server.stop()

    asyncio.run(main())
