"""What one rndc command costs zoneflow's BIND9 backend, and its share of a target task.

Against a real ``named`` (the test fixtures' Bind9Server: its own config, rndc
key and ports), through ``Bind9Backend`` exactly as a create-zone job's
target task calls it, once per rndc client, side by side in one run: the
``rndc`` program run per command (``rndc_client: program``), and rndc's
protocol over kept connections (``protocol``, the default):

* **per command**: ``addzone`` of a secondary zone (``create_zone``),
  ``showzone``, ``status`` and ``delzone -clean`` (``delete_zone``), one
  call at a time: wall time per call, and the CPU each call costs in this
  process (zoneflow's side), in the ``rndc`` processes it starts, and in
  named (from /proc);
* **the target task**: ``try_on_target``, what ZoneActionOnTarget runs once it
  knows its zone and target (the backend loaded through stevedore, then the
  call), for a create and a delete; next to the same task on a ``fake``
  target, which leaves the task's own cost without any server.

The zones' primary is a port nobody listens on, so named's transfer attempts
fail at once and are not part of what is measured. Figures go to
doc/benchmarks.md between the ``rndc-cost`` markers.

    python bench/rndc_cost.py [--calls 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pathlib
import resource
import statistics
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, free_port  # noqa: E402
from tests.support import make_zone, pool_target  # noqa: E402
from zoneflow import objects  # noqa: E402
from zoneflow.backends import rndc_config, rndc_protocol  # noqa: E402
from zoneflow.backends.impl_bind9 import Bind9Backend  # noqa: E402
from zoneflow.flows.on_target import try_on_target  # noqa: E402

# How the backend reaches named: a process per call, or kept connections.
CLIENTS = ("program", "protocol")
TICK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: this process, its reaped children (rndc), named."""

    own: float
    children: float
    named: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.own - other.own, self.children - other.children, self.named - other.named)


@dataclasses.dataclass(frozen=True)
class Row:
    what: str
    client: str
    walls: list[float]
    cpu: Cpu  # per call

    @property
    def total_cpu(self) -> float:
        return self.cpu.own + self.cpu.children


def cpu_now(named_pid: int) -> Cpu:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = pathlib.Path(f"/proc/{named_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return Cpu(
        own=time.process_time(),
        children=children.ru_utime + children.ru_stime,
        named=(int(fields[11]) + int(fields[12])) / TICK,
    )


def measure(what: str, client: str, calls: list[Callable[[], object]], named_pid: int) -> Row:
    walls = []
    before = cpu_now(named_pid)
    for call in calls:
        begin = time.perf_counter()
        call()
        walls.append(time.perf_counter() - begin)
    spent = cpu_now(named_pid) - before
    n = len(calls)
    return Row(what, client, walls, Cpu(spent.own / n, spent.children / n, spent.named / n))


def bind9_target(server: Bind9Server, client: str) -> objects.PoolTarget:
    described = server.pool_target([(HOST, free_port())])
    return pool_target(described, target_id=f"bind9-{client}", rndc_client=client)


def zones(prefix: str, calls: int) -> list[objects.Zone]:
    return [
        make_zone(id=f"{prefix}{i}", name=f"{prefix}{i}.rndc-cost.example.") for i in range(calls)
    ]


def commands(server: Bind9Server, client: str, calls: int) -> list[Row]:
    pid = server.process.pid if server.process else 0
    backend = Bind9Backend(bind9_target(server, client))
    named = zones(f"c-{client}-", calls)
    return [
        measure(
            "addzone (create_zone)",
            client,
            [functools.partial(backend.create_zone, z) for z in named],
            pid,
        ),
        measure(
            "showzone",
            client,
            [functools.partial(backend.rndc, "showzone", z.name) for z in named],
            pid,
        ),
        measure("status", client, [functools.partial(backend.rndc, "status")] * calls, pid),
        measure(
            "delzone -clean (delete_zone)",
            client,
            [functools.partial(backend.delete_zone, z) for z in named],
            pid,
        ),
    ]


def target_tasks(
    server: Bind9Server, target: objects.PoolTarget, label: str, calls: int
) -> list[Row]:
    pid = server.process.pid if server.process else 0
    named = zones(f"t-{label}-", calls)

    def task(action: objects.Action, zone: objects.Zone) -> None:
        outcome = try_on_target(action, target, zone)
        if not outcome.ok:
            raise RuntimeError(f"{action} of {zone.name} on {target.label}: {outcome.error}")

    return [
        measure(
            f"create-zone target task on {target.type}",
            label,
            [functools.partial(task, objects.Action.CREATE, z) for z in named],
            pid,
        ),
        measure(
            f"delete-zone target task on {target.type}",
            label,
            [functools.partial(task, objects.Action.DELETE, z) for z in named],
            pid,
        ),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| call | client | n | wall p50 (ms) | wall p99 (ms) | CPU ms/call: zoneflow "
        "| CPU ms/call: rndc processes | CPU ms/call: named |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.what} | {row.client} | {len(row.walls)} | "
            f"{ms(report.percentile(row.walls, 50))} | {ms(report.percentile(row.walls, 99))} | "
            f"{ms(row.cpu.own)} | {ms(row.cpu.children)} | {ms(row.cpu.named)} |"
        )
    return "\n".join(lines) + "\n"


def shares(tasks: list[Row], fake: list[Row]) -> str:
    """Per client: how much of the target task is the rndc call (the task on a
    fake target is the rest: stevedore, the outcome, logging)."""
    lines = [
        "| target task | client | wall p50 (ms) | CPU ms/task | of which the rndc call "
        "(vs the fake target) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    floor = {row.what.rsplit(" on ", 1)[0]: row for row in fake}
    for row in tasks:
        base = floor[row.what.rsplit(" on ", 1)[0]]
        share = 1 - base.total_cpu / row.total_cpu if row.total_cpu else 0.0
        lines.append(
            f"| {row.what} | {row.client} | {ms(statistics.median(row.walls))} | "
            f"{ms(row.total_cpu)} | {share:.0%} |"
        )
    for row in fake:
        lines.append(
            f"| {row.what} | — | {ms(statistics.median(row.walls))} | {ms(row.total_cpu)} | — |"
        )
    return "\n".join(lines) + "\n"


def summary(rows: list[Row]) -> str:
    """Per command: the CPU of a call with the program against the protocol."""
    by = {(row.what, row.client): row for row in rows}
    lines = []
    for what in dict.fromkeys(row.what for row in rows):
        program, protocol = by.get((what, "program")), by.get((what, "protocol"))
        if program is None or protocol is None:
            continue
        ours = protocol.total_cpu + protocol.cpu.named
        theirs = program.total_cpu + program.cpu.named
        lines.append(
            f"- {what}: {ms(theirs)} ms of CPU per call with the program, {ms(ours)} ms "
            f"with the protocol ({theirs / ours:.0f}× less), named included"
        )
    return "\n".join(lines) + "\n"


def niced() -> str:
    niceness = os.nice(0)
    return f", this benchmark and its named at nice {niceness}" if niceness else ""


def connections_opened(server: Bind9Server) -> int:
    key = rndc_config.load_key(
        key_file=str(server.rndc_key_file), config_file=None, server=server.host
    )
    return rndc_protocol.client(server.host, server.rndc_port, key).opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per command and client")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    server = Bind9Server().start()
    try:
        rows: list[Row] = []
        tasks: list[Row] = []
        for client in CLIENTS:
            rows += commands(server, client, args.calls)
            tasks += target_tasks(server, bind9_target(server, client), client, args.calls)
        fake = objects.PoolTarget(
            id="fake", pool_id="bench", type="fake", description="fake", masters=(), options={}
        )
        floor = target_tasks(server, fake, "fake", args.calls)
        opened = connections_opened(server)
    finally:
        server.stop()
    load_after = os.getloadavg()[0]
    print(table(rows))
    print(summary(rows))
    print(shares(tasks, floor))
    body = (
        "Through `Bind9Backend` against one real named (its own rndc key and port), one "
        f"call at a time, {args.calls} calls per command and client: `program` runs "
        "`rndc` per command (`rndc_client: program`), `protocol` speaks rndc's protocol "
        f"over kept connections (the default; {opened} connection opened for all its "
        "calls). CPU per call: this process (zoneflow's side), the `rndc` processes it "
        "started (reaped children), and named (from /proc, in 10 ms ticks over all the "
        "calls). With the program, zoneflow's side is mostly kernel time of the thread "
        "waiting for rndc to exit: a bare fork, exec and waitpid of rndc costs the parent "
        f"as much. Load average {load_before:.1f} before and {load_after:.1f} after, on "
        f"{os.cpu_count()} cores shared with other work{niced()}: it stretches the wall "
        "times more than the CPU figures.\n\n"
        + table(rows)
        + "\n"
        + summary(rows)
        + "\nThe target task (`try_on_target`: the backend loaded through stevedore, then "
        "the call), and how much of its CPU is the rndc call, against the same task on a "
        "`fake` target. A create-zone job runs one such task per target.\n\n" + shares(tasks, floor)
    )
    report.write_section("rndc-cost", "BIND9 backend: what one rndc call costs", body)


if __name__ == "__main__":
    main()
