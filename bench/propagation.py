"""Propagation benchmark: API call → zone served by every BIND9 of the pool.

Side by side in one run, on the same machine and the same BIND9 build:

* **BIND9 floor**: ``rndc addzone`` of a secondary whose primary already has
  the zone, until that secondary answers its SOA. No zoneflow involved: no
  pipeline can beat this.
* **zoneflow**: ``central_zones.create_zone`` (all-in-one: SQLite, zake jobboard,
  conductor and mdns in this process) until *every* BIND9 target answers the
  zone's SOA, measured by independent SOA queries from this script, and
  until zoneflow shows the zone ACTIVE (served *and* verified).

Figures go to doc/benchmarks.md (the section between the propagation
markers) with the date and machine.

    python bench/propagation.py [--zones 50]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402

from bench import report  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import free_port  # noqa: E402

POLL = 0.005


def serves(zone: str, server: Bind9Server) -> bool:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, server.host, port=server.port, timeout=0.5)
    except dns.exception.Timeout:
        return False
    return any(r.rdtype == dns.rdatatype.SOA for r in response.answer)


def wait_served(zone: str, server: Bind9Server, started: float, timeout: float = 30) -> float:
    while not serves(zone, server):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{zone} not served by {server.host}:{server.port} in {timeout}s")
        time.sleep(POLL)
    return time.monotonic() - started


def _record(times: list[float], zone: str, server: Bind9Server, started: float) -> None:
    times.append(wait_served(zone, server, started))


def bind9_floor(count: int, workdir: pathlib.Path, targets: int) -> list[float]:
    """rndc addzone on every secondary → all serve the zone (the primary is one more BIND9)."""
    names = ["primary"] + [f"secondary-{i}" for i in range(targets)]
    servers = [Bind9Server(workdir=workdir / name) for name in names]
    for server in servers:
        server.start()
    primary, secondaries = servers[0], servers[1:]
    try:
        samples = []
        for i in range(count):
            zone = f"floor{i}.bench.example."
            (primary.workdir / f"floor{i}.zone").write_text(
                "$TTL 300\n@ SOA ns1.bench.example. hostmaster.bench.example. 1 3600 600 "
                "86400 300\n@ NS ns1.bench.example.\nwww A 192.0.2.1\n"
            )
            primary.rndc("addzone", zone, f'{{ type primary; file "floor{i}.zone"; }};')
            started = time.monotonic()
            for secondary in secondaries:
                secondary.rndc(
                    "addzone",
                    zone,
                    f"{{ type secondary; primaries {{ {primary.host} port {primary.port}; }}; "
                    f'file "floor{i}.db"; }};',
                )
            samples.append(max(wait_served(zone, s, started) for s in secondaries))
        return samples
    finally:
        for server in servers:
            server.close()


def zoneflow_propagation(
    count: int, workdir: pathlib.Path, targets: int, *, memory_persistence: bool = False
) -> tuple[list[float], list[float]]:
    """central_zones.create_zone → every target serves it; and → zoneflow shows it ACTIVE.

    ``memory_persistence`` swaps TaskFlow's persistence for its in-memory
    backend (no resumption possible): the difference is what persisting
    flow state costs.
    """
    import yaml
    from taskflow.persistence import backends as tf_backends

    from zoneflow import allinone, config, objects
    from zoneflow.central import pools
    from zoneflow.central import zones as central_zones
    from zoneflow.storage import zones as stored_zones
    from zoneflow.taskflow_adapter import persistence

    workdir.mkdir(parents=True, exist_ok=True)
    binds = [Bind9Server(workdir=workdir / f"bind9-{i}") for i in range(targets)]
    for bind in binds:
        bind.start()
    try:
        mdns_port = free_port()
        conf = workdir / "zoneflow.conf"
        conf.write_text(
            f"[database]\nconnection = sqlite:///{workdir}/zoneflow.sqlite\n"
            f"[mdns]\nport = {mdns_port}\n[jobboard]\nbackend = zake\n"
        )
        config.setup([str(conf)])
        persistence.reset()
        if memory_persistence:
            memory = tf_backends.fetch({"connection": "memory://"})
            original = persistence.get_backend
            persistence.get_backend = lambda: memory  # type: ignore[assignment]
        services = allinone.AllInOne(api=False)
        services.start()
        pool = {
            "name": "default",
            "ns_records": [{"hostname": "ns1.bench.example.", "priority": 1}],
            "nameservers": [b.nameserver() for b in binds],
            "targets": [b.pool_target([("127.0.0.1", mdns_port)]) for b in binds],
        }
        (workdir / "pools.yaml").write_text(yaml.safe_dump([pool]))
        pools.update(str(workdir / "pools.yaml"))
        served, active = [], []
        try:
            for i in range(count):
                name = f"zone{i}.bench.example."
                started = time.monotonic()
                zone = central_zones.create_zone(name, "hostmaster@bench.example")
                times: list[float] = []
                watchers = [
                    threading.Thread(target=_record, args=(times, name, b, started)) for b in binds
                ]
                for w in watchers:
                    w.start()
                while stored_zones.get_zone_any(zone.id).status == objects.Status.PENDING:  # type: ignore[union-attr]
                    time.sleep(POLL)
                active.append(time.monotonic() - started)
                for w in watchers:
                    w.join()
                served.append(max(times))
                if stored_zones.get_zone_any(zone.id).status != objects.Status.ACTIVE:  # type: ignore[union-attr]
                    raise RuntimeError(f"{name} ended {stored_zones.get_zone_any(zone.id)}")
        finally:
            services.stop()
            if memory_persistence:
                persistence.get_backend = original  # type: ignore[assignment]
        return served, active
    finally:
        for bind in binds:
            bind.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=50)
    parser.add_argument("--targets", type=int, default=2, help="BIND9 servers in the pool")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoneflow-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        floor = bind9_floor(args.zones, workdir / "floor", args.targets)
        served, active = zoneflow_propagation(args.zones, workdir / "zoneflow", args.targets)
        mem_served, mem_active = zoneflow_propagation(
            args.zones, workdir / "memory", args.targets, memory_persistence=True
        )
    rows = [
        ("BIND9 floor: rndc addzone on each → served by all (no zoneflow)", floor),
        ("zoneflow: create_zone → served by all", served),
        ("zoneflow: create_zone → shown ACTIVE (verified)", active),
        ("same, TaskFlow in-memory persistence: → served by all", mem_served),
        ("same, TaskFlow in-memory persistence: → shown ACTIVE", mem_active),
    ]
    table = report.latency_table(rows)
    text = (
        f"Create-zone propagation, {args.zones} zones one after another, pool of "
        f"{args.targets} BIND9 "
        'targets, all-in-one (SQLite, zake jobboard). "Served" is seen by this script\'s own '
        'SOA queries to every server; "ACTIVE" is when zoneflow, having verified it, says '
        "so. The in-memory rows lose resumption and are there only to show what TaskFlow's "
        "stock SQLAlchemy persistence costs per job.\n\n" + table
    )
    print(text)
    if not args.no_write:
        report.write_section(
            f"propagation-{args.targets}",
            f"Propagation to a pool of {args.targets} BIND9 servers",
            text,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
