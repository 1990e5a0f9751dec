"""What mdns spends on a target's NOTIFY: the plain path against the full one.

Every target a pool NOTIFYs mdns of each serial it loads (BIND9's
``also-notify``, as doc/backends.md recommends): on 8 targets about one
request in three mdns answers under load. mdns reads a NOTIFY of the plain
shape by hand (zoneflow.mdns.plain_soa) and keeps its reply rendered; any
other goes through dnspython (the full path). This measures both on the same
NOTIFYs, in one process: a SQLite database holding the zones, mdns's
responder (no sockets: its threads and event loop cost the same either way),
the NOTIFYs BIND9 sends (AA, the SOA of the new serial), each zone NOTIFYed by
8 targets in turn, as a batch's zones are. Rounds of each path alternate;
CPU is the process's (time.process_time) over each round.

    python bench/notify_cost.py [--zones 100] [--rounds 5] [--no-write]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.opcode  # noqa: E402
import dns.rrset  # noqa: E402

from bench import report  # noqa: E402

TARGETS = 8
SOA = "ns1.bench.example. hostmaster.bench.example. {} 3600 600 86400 300"


def notify_wire(zone: str, serial: int) -> bytes:
    """A NOTIFY as BIND9 sends one to its also-notify list."""
    notify = dns.message.make_query(zone, "SOA", flags=dns.flags.AA)
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.answer.append(dns.rrset.from_text(zone, 300, "IN", "SOA", SOA.format(serial)))
    return notify.to_wire()


def cpu_per_notify(answer: Callable[[bytes], object], wires: list[bytes]) -> float:
    """Microseconds of CPU a NOTIFY, answering every one of ``wires``."""
    started = time.process_time()
    for wire in wires:
        answer(wire)
    return (time.process_time() - started) / len(wires) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each path")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the doc")
    args = parser.parse_args()

    from tests import support
    from tests.integration.conftest import fake_pool_yaml
    from zoneflow.central import zones as central_zones
    from zoneflow.mdns.responder import Responder

    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-bench-notify-") as tmp,
        support.database(f"sqlite:///{tmp}/zoneflow.sqlite", pools_yaml=fake_pool_yaml()),
    ):
        zones = [
            central_zones.create_zone(f"z{i:04d}.bench.example.", "hostmaster@bench.example")
            for i in range(args.zones)
        ]
        wires = [notify_wire(z.name, z.serial) for z in zones for _ in range(TARGETS)]
        responder = Responder()

        def plain(wire: bytes) -> object:
            return list(responder.answer(wire, tcp=False, peer="bench", address="127.0.0.1"))

        def full(wire: bytes) -> object:
            return list(responder._answer(wire, tcp=False, peer="bench", address="127.0.0.1"))  # noqa: SLF001

        assert plain(wires[0]) == full(wires[0]), "the two paths answer alike"
        for answer in (plain, full):  # warm: the zones' ids read, the replies kept
            cpu_per_notify(answer, wires)
        measured: dict[str, list[float]] = {"plain path": [], "full path (dnspython)": []}
        for _ in range(args.rounds):
            measured["plain path"].append(cpu_per_notify(plain, wires))
            measured["full path (dnspython)"].append(cpu_per_notify(full, wires))

    rows = [
        [
            path,
            str(len(wires)),
            f"{statistics.median(samples):.0f}",
            f"{min(samples):.0f}",
            f"{max(samples):.0f}",
        ]
        for path, samples in measured.items()
    ]
    plain_us, full_us = (statistics.median(samples) for samples in measured.values())
    body = (
        f"{args.zones} zones in SQLite, each NOTIFYed by {TARGETS} targets in turn "
        "(BIND9's shape: AA, the new serial's SOA in the answer), answered by mdns's "
        f"responder in this process; {args.rounds} rounds of each path, alternating, after "
        "one of each to warm up (the zones' ids read, the replies kept). CPU from "
        "time.process_time over each round (bench/notify_cost.py).\n\n"
        + report.markdown_table(
            [
                "path",
                "NOTIFYs a round",
                "CPU a NOTIFY: median (µs)",
                "fastest round (µs)",
                "slowest round (µs)",
            ],
            rows,
        )
        + f"\nThe plain path takes {plain_us / full_us:.0%} of the full path's CPU a NOTIFY. "
        "Neither counts what mdns's server adds around the responder (its socket, a "
        "thread of its pool): the same for both.\n"
    )
    print(body)
    if not args.no_write:
        report.write_section("notify-cost", "mdns: what a target's NOTIFY costs", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
