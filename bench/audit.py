"""Audit benchmark: SOA checks per second against BIND9, and a full audit's time.

In one run, on the same machine and BIND9 build:

* two BIND9 servers each load ``--zones`` primary zones (one zone file
  shared by all, from an include in named.conf: adding 100,000 zones with
  ``rndc addzone`` would take the better part of an hour);
* **the ceiling**: BIND9's own answer rate for SOA queries to those zones,
  measured by dnsperf (Debian ``dnsperf``) against one of the servers,
  before the audits and again after them (the machine is shared: the two
  say how much its load moved meanwhile);
* **the probe alone**: :func:`zoneflow.dns.soa_probe.serials` asks both
  servers for the SOA of every zone (2 × ``--zones`` checks), its rate in
  checks per second, and per CPU second of its own process (what the probe
  costs, whatever else the machine is doing);
* **a full audit, twice**: the producer's audit (:func:`zoneflow.producer.audit.audit`)
  of the same zones, stored in a SQLite database in ACTIVE at the served
  serial, from reading the zones to recording the findings: its wall time,
  its checks per second, and that it found every zone served and posted
  nothing. The first writes every per-target row, the second only changes.

Figures go to doc/benchmarks.md between the ``audit`` markers.

    python bench/audit.py [--zones 100000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from bench import report  # noqa: E402
from tests import support  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from zoneflow.dns import soa_probe  # noqa: E402
from zoneflow.producer import audit, settings  # noqa: E402
from zoneflow.storage import db, models, tables  # noqa: E402

SERIAL = 2026120401
ZONE_FILE = f"""$TTL 300
@ IN SOA ns1.audit.bench. hostmaster.audit.bench. {SERIAL} 3600 600 86400 300
@ IN NS ns1.audit.bench.
"""


def zone_names(count: int) -> list[str]:
    return [f"z{i}.audit.bench." for i in range(count)]


class LoadedBind9(Bind9Server):
    """BIND9 with ``names`` as primary zones, all from one shared zone file."""

    def __init__(self, names: list[str], **kwargs: object) -> None:
        super().__init__(start_timeout=600.0, **kwargs)  # type: ignore[arg-type]
        self.names = names

    def prepare(self) -> None:
        super().prepare()
        (self.workdir / "bench.db").write_text(ZONE_FILE)
        with (self.workdir / "zones.conf").open("w") as conf:
            for name in self.names:
                conf.write(f'zone "{name}" {{ type primary; file "bench.db"; }};\n')
        with self.conf_path.open("a") as conf:
            conf.write(f'include "{self.workdir / "zones.conf"}";\n')

    def is_ready(self) -> bool:
        # Ready once the last zone of the include is served.
        if not super().is_ready():
            return False
        found = soa_probe.serials({(self.host, self.port): self.names[-1:]}, timeout=0.5)
        return found[(self.host, self.port)][0] == SERIAL


def probe_rate(servers: list[LoadedBind9], in_flight: int) -> tuple[float, float, int, int]:
    """(checks per second, checks per CPU second of this process, checks, checks that
    did not find the serial)."""
    questions: dict[tuple[str, int], list[str | bytes]] = {
        (s.host, s.port): list(s.names) for s in servers
    }
    started, cpu = time.perf_counter(), time.process_time()
    found = soa_probe.serials(questions, in_flight=in_flight)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    checks = sum(len(names) for names in questions.values())
    wrong = sum(1 for findings in found.values() for f in findings if f != SERIAL)
    return checks / elapsed, checks / cpu, checks, wrong


def store_zones(servers: list[LoadedBind9], database: pathlib.Path) -> None:
    """A SQLite database holding a pool of the servers and their zones, ACTIVE at the
    served serial, written in bulk (central's one change at a time would take hours)."""
    pool = {
        "name": "default",
        "ns_records": [{"hostname": "ns1.audit.bench.", "priority": 1}],
        "targets": [s.pool_target([("127.0.0.1", 53)]) for s in servers],
    }
    support.database(f"sqlite:///{database}", pools_yaml=yaml.safe_dump([pool])).__enter__()
    with db.transaction() as conn:
        pool_id = conn.execute(sa.select(models.Pool.id)).scalar_one()
        now = models.utcnow()
        conn.execute(
            tables.zones.insert(),
            [
                {
                    "id": models.new_id(),
                    "name": name,
                    "email": "hostmaster@audit.bench",
                    "ttl": 300,
                    "serial": SERIAL,
                    "refresh": 3600,
                    "retry": 600,
                    "expire": 86400,
                    "minimum": 300,
                    "status": "ACTIVE",
                    "action": "NONE",
                    "pool_id": pool_id,
                    "deleted": models.LIVE,
                    "created_at": now,
                }
                for name in servers[0].names
            ],
        )


def full_audit(in_flight: int) -> tuple[audit.AuditReport, float]:
    """The producer's audit of every shard, as one producer holding them all runs it,
    and its checks per CPU second of this process."""
    config = dataclasses.replace(settings.read(), audit_in_flight=in_flight)
    cpu = time.process_time()
    report = audit.audit(config, frozenset(range(config.shards)))
    return report, report.checks / (time.process_time() - cpu)


def dnsperf_qps(server: LoadedBind9, workdir: pathlib.Path, seconds: int) -> float:
    program = shutil.which("dnsperf")
    if program is None:
        raise RuntimeError("dnsperf is not installed: apt-get install dnsperf (make sysdeps)")
    queries = workdir / "queries.txt"
    queries.write_text("".join(f"{name} SOA\n" for name in server.names))
    done = subprocess.run(
        [program, "-s", server.host, "-p", str(server.port), "-d", str(queries)]
        + ["-l", str(seconds), "-c", "4", "-q", "500"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"dnsperf printed no rate:\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=5, help="dnsperf run length")
    parser.add_argument("--in-flight", type=int, default=500, help="questions per server")
    parser.add_argument("--no-write", action="store_true", help="print, leave the doc alone")
    args = parser.parse_args()

    names = zone_names(args.zones)
    with tempfile.TemporaryDirectory(prefix="zoneflow-bench-audit-") as tmp:
        workdir = pathlib.Path(tmp)
        started = time.perf_counter()
        servers = [LoadedBind9(names).start(), LoadedBind9(names).start()]
        loaded = time.perf_counter() - started
        print(f"two BIND9 servers loaded {args.zones} zones each in {loaded:.0f} s")
        try:
            ceiling = dnsperf_qps(servers[0], workdir, args.seconds)
            print(f"dnsperf against one server: {ceiling:.0f} qps")
            rate, rate_cpu, checks, wrong = probe_rate(servers, args.in_flight)
            print(f"probe: {checks} checks, {rate:.0f}/s, {wrong} without the serial")
            store_zones(servers, workdir / "zoneflow.sqlite")
            first, first_cpu = full_audit(args.in_flight)
            print(f"first audit (rows written): {first}")
            second, second_cpu = full_audit(args.in_flight)
            print(f"second audit (rows as found): {second}")
            ceiling_after = dnsperf_qps(servers[0], workdir, args.seconds)
            print(f"dnsperf against one server, again: {ceiling_after:.0f} qps")
            load = os.getloadavg()[0]
        finally:
            for server in servers:
                server.close()
    body = (
        f"| measured | value |\n| --- | ---: |\n"
        f"| SOA checks per second, probe alone, 2 targets × {args.zones} zones | {rate:.0f} |\n"
        f"| the same, per CPU second of the probe's process | {rate_cpu:.0f} |\n"
        f"| checks that did not find the served serial | {wrong} |\n"
        f"| full audit, first (writes 2 × {args.zones} per-target rows): time | "
        f"{first.seconds:.1f} s |\n"
        f"| full audit, first: checks per second (per CPU second of its process) | "
        f"{first.rate:.0f} ({first_cpu:.0f}) |\n"
        f"| full audit, again (rows already as found): time | {second.seconds:.1f} s |\n"
        f"| full audit, again: checks per second (per CPU second of its process) | "
        f"{second.rate:.0f} ({second_cpu:.0f}) |\n"
        f"| zones found missing or behind, jobs posted (both audits) | "
        f"{first.missing + first.behind + second.missing + second.behind}, "
        f"{first.recoveries + second.recoveries} |\n"
        f"| BIND9's own SOA answer rate, one server (dnsperf, 4 clients, "
        f"{args.seconds} s), before and after | {ceiling:.0f}, {ceiling_after:.0f} |\n"
        f"\nThe machine's load average at the end: {load:.1f} (other work shared its "
        "cores). BIND9 and the audit share the same cores: each check costs both. "
        "The first audit writes every per-target row (none existed); later audits "
        "write only rows whose state changed. The goal is 10,000 checks per second or "
        "more; what the probe costs itself is its rate per CPU second, the rest of a "
        "check's time is BIND9's answer and the wait for a core.\n"
    )
    print(body)
    if not args.no_write:
        report.write_section("audit", "Audit: SOA checks against BIND9", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
