"""bench/load.py's sweeper: a process of its own, independent of zoneflow, that asks every
target over plain DNS until each change is served by all of them.

It reads the changes to watch (JSON lines) on stdin and writes each one as
every target serves it on stdout; bench/load.py's SweeperLink is the other
end. Its pace is described in bench/load.py: where each target NOTIFYs it of
the serials it loads (``--notify-fds``), a zone is asked of a target when
that target's NOTIFY comes (at once if it came before the change did), and
otherwise only in case it was lost: once a second, or every quarter of the
change's age once that is longer; without them, every
10 ms while a change is young, then 5 % of its age, at most a second. Either
way within a query budget.

    python bench/load_sweeper.py HOST:PORT ... [--min S] [--fraction F] [--max S] [--budget Q]
                                 [--notify-fds FD,FD,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import json
import math
import os
import pathlib
import select
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402

SOA = dns.rdatatype.SOA
NO_ZONE = {dns.rcode.REFUSED, dns.rcode.NXDOMAIN, dns.rcode.NOTAUTH}
AA = 0x0400
QR = 0x8000
OPCODE = 0x7800
# A zone whose target NOTIFYs the sweeper is asked, in case that NOTIFY was lost,
# every ``--max`` seconds or this share of its change's age, whichever is longer.
LOST_NOTIFY_FRACTION = 0.25


def soa_query(zone: str) -> bytearray:
    """A plain SOA query for ``zone`` (no recursion wanted, no EDNS), as wire bytes whose
    first two (the id) the sweeper sets for each send."""
    return bytearray(dns.message.make_query(zone, SOA, flags=0).to_wire())


def read_soa(response: bytes, question: bytes) -> tuple[int, bool, int | None] | None:
    """The rcode, the AA flag and the SOA serial of an answer to a query whose question
    section is ``question``; None if it answers another question.

    dnspython's full parse of every answer would cost the sweeper more than all
    else it does; the one field it needs sits at a fixed place from the end of
    the first answer record. tests/unit/test_bench_load.py holds this to
    dnspython's reading of the same bytes.
    """
    if response[12 : 12 + len(question)] != question:
        return None
    flags = struct.unpack_from(">H", response, 2)[0]
    return flags & 0x000F, bool(flags & AA), answer_serial(response, 12 + len(question))


def answer_serial(wire: bytes, offset: int) -> int | None:
    """The serial of a message's first answer record, at ``offset`` (past the
    question), if it is an SOA; else None."""
    if struct.unpack_from(">H", wire, 6)[0] == 0:
        return None
    offset = _skip_name(wire, offset)
    rtype, _, _, rdlength = struct.unpack_from(">HHIH", wire, offset)
    if rtype != SOA:
        return None
    end = offset + 10 + rdlength
    return int(struct.unpack_from(">I", wire, end - 20)[0])


def notify_answer(question: bytes) -> bytes:
    """The answer to a NOTIFY whose header and question section are ``question``: the
    same id, question and opcode, QR and AA set, no records."""
    query_id, flags = struct.unpack_from(">HH", question)
    header = struct.pack(">HHHHHH", query_id, (flags & OPCODE) | QR | AA, 1, 0, 0, 0)
    return header + question[12:]


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length >= 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


@dataclasses.dataclass
class Expect:
    """A change the sweeper waits for: on which targets it is not yet served."""

    index: int
    zone: str
    action: str
    serial: int
    due: float
    left: set[int]
    before: float = 0.0
    served: float = 0.0
    superseded: bool = False
    by_notify: bool = False  # its last target's serving found by the query a NOTIFY prompted

    def served_by(self, rcode: int, authoritative: bool, serial: int | None) -> bool:
        if self.action == "delete":
            return rcode in NO_ZONE or (rcode == dns.rcode.NOERROR and not authoritative)
        return rcode == dns.rcode.NOERROR and serial is not None and serial >= self.serial


@dataclasses.dataclass
class Watch:
    """A zone asked of one target while some change of it is not served there."""

    changes: list[Expect]
    due: float
    prompted: bool = False  # by the target's NOTIFY, since the zone was last asked


class Sweeper:
    """Asks the targets, over plain DNS, until each change is served by all of them."""

    def __init__(
        self,
        targets: Sequence[tuple[str, int]],
        *,
        minimum: float,
        fraction: float,
        maximum: float,
        budget: float,
        out: Callable[[dict[str, Any]], None],
        notified: Sequence[socket.socket] = (),
    ) -> None:
        """``notified``: a socket for each target, in the same order, on which that target
        NOTIFYs each serial it loads (Bind9Server's also_notify). A NOTIFY has the zone
        asked of that target at once; a zone with no delete waiting is otherwise asked
        only in case a NOTIFY was lost: every ``maximum`` seconds, or a quarter of the
        change's age once that is longer (LOST_NOTIFY_FRACTION)."""
        self.targets = list(targets)
        self.minimum, self.fraction, self.maximum, self.budget = minimum, fraction, maximum, budget
        self.out = out
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in targets]
        for sock in self.sockets:
            sock.setblocking(False)
        self.notified = list(notified)
        for sock in self.notified:
            sock.setblocking(False)
        self.queries: dict[str, bytearray] = {}
        self.zones: dict[bytes, str] = {}  # a question's wire, lower-cased -> its zone
        self.watches: dict[tuple[int, str], Watch] = {}
        # The newest serial each target NOTIFYed of each zone, by (target, the zone's
        # question in lower case): a target may load a change before it is expected
        # here (the API's answer came late), and its NOTIFY must not be lost then.
        self.notified_serials: dict[tuple[int, bytes], int] = {}
        self.due: list[tuple[float, int, int, str]] = []  # (when, tiebreak, target, zone)
        # Per target: query id -> (zone, sent at, whether a NOTIFY prompted it).
        self.asked: list[dict[int, tuple[str, float, bool]]] = [{} for _ in targets]
        self.ids = itertools.count(1)
        self.pending: dict[int, Expect] = {}
        self.sent = self.answers = self.notifies = 0
        # (change, target) pairs seen served by a query a NOTIFY prompted, and by any other.
        self.served_on_notify = self.served_on_poll = 0

    def expect(self, index: int, zone: str, action: str, serial: int, due: float) -> None:
        change = Expect(index, zone, action, serial, due, set(range(len(self.targets))))
        self.pending[index] = change
        query = self.queries.get(zone)
        if query is None:
            query = self.queries[zone] = soa_query(zone)
        question = bytes(query[12:]).lower()
        self.zones[question] = zone
        now = time.monotonic()
        for target in change.left:
            watch = self.watches.setdefault((target, zone), Watch([], math.inf))
            watch.changes.append(change)
            first = now
            if self._told(watch) and self.notified_serials.get((target, question), -1) < serial:
                # Its NOTIFY will say when: asking now would only find it not yet served.
                first = now + self._pace(watch, now)
            if watch.due > first + self.minimum:
                self._ask_at(watch, target, zone, first)

    def _told(self, watch: Watch) -> bool:
        """Whether the target NOTIFYs the sweeper of each change ``watch`` waits for (a
        delete's, no NOTIFY announces)."""
        return bool(self.notified) and all(change.action != "delete" for change in watch.changes)

    def _ask_at(self, watch: Watch, target: int, zone: str, when: float) -> None:
        watch.due = when
        heapq.heappush(self.due, (when, next(self.ids), target, zone))

    def ask_due(self, now: float, allowance: float) -> float:
        """Send the queries due by ``now``, at most ``allowance`` of them; the queries sent."""
        sent = 0
        while self.due and self.due[0][0] <= now and sent < allowance:
            when, _, target, zone = heapq.heappop(self.due)
            watch = self.watches.get((target, zone))
            if watch is None or watch.due != when:
                continue  # served meanwhile
            query_id = next(self.ids) % 65536
            wire = self.queries[zone]
            struct.pack_into(">H", wire, 0, query_id)
            try:
                self.sockets[target].sendto(wire, self.targets[target])
            except BlockingIOError:
                pass  # the socket's buffer is full: asked again at the next due time
            else:
                self.asked[target][query_id] = (zone, now, watch.prompted)
                sent += 1
            watch.prompted = False
            watch.due = now + self._pace(watch, now)
            heapq.heappush(self.due, (watch.due, next(self.ids), target, zone))
        self.sent += sent
        return sent

    def _pace(self, watch: Watch, now: float) -> float:
        """Seconds until the zone is asked of the target again, unless a NOTIFY comes."""
        age = now - max(change.due for change in watch.changes)
        if self._told(watch):
            # The target's NOTIFY says when; this only covers a lost one. Under overload
            # every change ages, and asking each once a second made the sweeper's
            # queries grow with the backlog (147 a change on 8 targets, against 39),
            # taking from BIND9 the CPU the changes waited for.
            return max(self.maximum, LOST_NOTIFY_FRACTION * age)
        # Asked often while young, less as it ages: the resolution stays a fraction of
        # the latency, and the queries a second stay bounded.
        return min(self.maximum, max(self.minimum, self.fraction * age))

    def hear_notifies(self, target: int) -> None:
        """Answer the NOTIFYs ``target`` sent, and ask it at once of each zone watched there."""
        sock = self.notified[target]
        while True:
            try:
                message, sender = sock.recvfrom(4096)
            except BlockingIOError:
                return
            try:
                end = _skip_name(message, 12) + 4  # the question: its name, type and class
                serial = answer_serial(message, end)
            except (IndexError, struct.error):
                continue  # not a DNS message
            with contextlib.suppress(OSError):  # unanswered, it comes again
                sock.sendto(notify_answer(message[:end]), sender)
            self.notifies += 1
            question = message[12:end].lower()
            if serial is not None:
                known = self.notified_serials.get((target, question), -1)
                self.notified_serials[(target, question)] = max(known, serial)
            zone = self.zones.get(question)
            if zone is not None and (watch := self.watches.get((target, zone))) is not None:
                watch.prompted = True
                self._ask_at(watch, target, zone, time.monotonic())

    def read(self, target: int) -> None:
        sock = self.sockets[target]
        while True:
            try:
                response = sock.recv(4096)
            except BlockingIOError:
                return
            now = time.monotonic()
            if len(response) < 12:
                continue
            entry = self.asked[target].pop(struct.unpack_from(">H", response)[0], None)
            if entry is None:
                continue
            zone, sent_at, prompted = entry
            reading = read_soa(response, bytes(self.queries[zone][12:]))
            if reading is not None:
                self.answers += 1
                self._heard(target, zone, sent_at, now, *reading, prompted=prompted)

    def _heard(
        self,
        target: int,
        zone: str,
        sent_at: float,
        now: float,
        rcode: int,
        authoritative: bool,
        serial: int | None,
        *,
        prompted: bool = False,
    ) -> None:
        watch = self.watches.get((target, zone))
        if watch is None:
            return
        for change in list(watch.changes):
            if change.served_by(rcode, authoritative, serial):
                if prompted:
                    self.served_on_notify += 1
                else:
                    self.served_on_poll += 1
                if change.action == "delete":
                    self._supersede(watch, change, target, now)
                self._served(watch, change, target, now, prompted=prompted)
            else:
                change.before = max(change.before, sent_at)
        if not watch.changes:
            del self.watches[(target, zone)]

    def _supersede(self, watch: Watch, delete: Expect, target: int, now: float) -> None:
        """The zone is gone from ``target``: its earlier changes still waiting never will be
        served there."""
        for change in list(watch.changes):
            if change is not delete and change.index < delete.index:
                change.superseded = True
                self._served(watch, change, target, now)

    def _served(
        self, watch: Watch, change: Expect, target: int, now: float, *, prompted: bool = False
    ) -> None:
        watch.changes.remove(change)
        change.left.discard(target)
        if now >= change.served:
            change.served, change.by_notify = now, prompted
        if not change.left:
            del self.pending[change.index]
            self.out(
                {
                    "served": change.index,
                    "at": change.served,
                    "before": change.before,
                    "superseded": change.superseded,
                    "by_notify": change.by_notify,
                }
            )

    def forget_old_queries(self, now: float) -> None:
        for asked in self.asked:
            for query_id in [i for i, (_, at, _) in asked.items() if now - at > 5.0]:
                del asked[query_id]


def sweep_main(argv: Sequence[str]) -> int:
    """``load_sweeper.py HOST:PORT ...``: read changes (JSON lines) on stdin, write each as it
    is served by every target to stdout; ``{"finish": T}`` ends it once all are served or
    at monotonic time T, with its own figures last."""
    parser = argparse.ArgumentParser(prog="load_sweeper.py")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--min", type=float, default=0.01)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--max", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=4000.0)
    parser.add_argument(
        "--notify-fds", default="", help="inherited sockets, one a target, its NOTIFYs come to"
    )
    args = parser.parse_args(argv)
    targets = [(host, int(port)) for host, port in (t.rsplit(":", 1) for t in args.targets)]
    notified = [socket.socket(fileno=int(fd)) for fd in args.notify_fds.split(",") if fd]
    if notified and len(notified) != len(targets):
        parser.error("--notify-fds needs one socket for each target")

    def out(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    sweeper = Sweeper(
        targets,
        minimum=args.min,
        fraction=args.fraction,
        maximum=args.max,
        budget=args.budget,
        out=out,
        notified=notified,
    )
    out({"ready": sum(os.times()[:2])})
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    listening = [stdin]
    buffered = b""
    finish: float | None = None
    last = time.monotonic()
    cleaned = last
    while finish is None or (sweeper.pending and time.monotonic() < finish):
        now = time.monotonic()
        sweeper.ask_due(now, max(1.0, args.budget * (now - last)))
        last = now
        wait = min(0.005, max(0.0, sweeper.due[0][0] - now)) if sweeper.due else 0.005
        readable, _, _ = select.select(
            [*listening, *sweeper.sockets, *sweeper.notified], [], [], wait
        )
        for target, sock in enumerate(sweeper.notified):
            if sock in readable:
                sweeper.hear_notifies(target)
        for target, sock in enumerate(sweeper.sockets):
            if sock in readable:
                sweeper.read(target)
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:  # the driver is gone: finish with what is pending
                listening.clear()
                finish = finish or time.monotonic()
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "finish" in message:
                    finish = float(message["finish"])
                else:
                    sweeper.expect(**message)
        if now - cleaned > 1.0:
            sweeper.forget_old_queries(now)
            cleaned = now
    out(
        {
            "cpu": sum(os.times()[:2]),
            "queries": sweeper.sent,
            "answers": sweeper.answers,
            "notifies": sweeper.notifies,
            "served_on_notify": sweeper.served_on_notify,
            "served_on_poll": sweeper.served_on_poll,
            "unserved": sorted(sweeper.pending),
        }
    )
    # Alive until the driver has read this process's CPU and closes the pipe.
    os.set_blocking(stdin, True)
    while listening and os.read(stdin, 65536):
        pass
    return 0


@contextlib.asynccontextmanager
async def sweeper_process(
    binds: Sequence[Bind9Server],
    options: Sequence[str] = (),
    notified: Sequence[socket.socket] = (),
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The sweeper, asking ``binds``; ``notified``: a socket for each of them, which
    that server NOTIFYs (see Sweeper)."""
    fds = [sock.fileno() for sock in notified]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        *(f"{b.host}:{b.port}" for b in binds),
        *options,
        *(["--notify-fds", ",".join(map(str, fds))] if fds else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        pass_fds=fds,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


if __name__ == "__main__":
    raise SystemExit(sweep_main(sys.argv[1:]))
