"""Audit benchmark: SOA checks per second against BIND9, and a full audit's time.

In one run, on the same machine and BIND9 build:

* two BIND9 servers each load ``--zones`` primary zones (one zone file
  shared by all, from an include in named.conf: adding 100,000 zones with
  ``rndc addzone`` would take the better part of an hour);
* **the probe alone**: :func:`zoneflow.dns.soa_probe.serials` asks both
  servers for the SOA of every zone (2 × ``--zones`` checks), its rate in
  checks per second;
* **a full audit**: the producer's audit (:func:`zoneflow.producer.audit.audit`)
  of the same zones, stored in a SQLite database in ACTIVE at the served
  serial, from reading the zones to recording the findings: its wall time,
  its checks per second, and that it found every zone served and posted nothing;
* **the ceiling**: BIND9's own answer rate for SOA queries to those zones,
  measured by dnsperf (Debian ``dnsperf``) against one of the servers.

Figures go to doc/benchmarks.md between the ``audit`` markers.

    python bench/audit.py [--zones 100000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from zoneflow.dns import soa_probe  # noqa: E402

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


def probe_rate(servers: list[LoadedBind9], in_flight: int) -> tuple[float, int, int]:
    """(checks per second, checks, checks that did not find the serial)."""
    questions = {(s.host, s.port): s.names for s in servers}
    started = time.perf_counter()
    found = soa_probe.serials(questions, in_flight=in_flight)
    elapsed = time.perf_counter() - started
    checks = sum(len(names) for names in questions.values())
    wrong = sum(1 for findings in found.values() for f in findings if f != SERIAL)
    return checks / elapsed, checks, wrong


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
            rate, checks, wrong = probe_rate(servers, args.in_flight)
            print(f"probe: {checks} checks, {rate:.0f}/s, {wrong} without the serial")
            ceiling = dnsperf_qps(servers[0], workdir, args.seconds)
            print(f"dnsperf against one server: {ceiling:.0f} qps")
        finally:
            for server in servers:
                server.close()
    body = (
        f"| measured | value |\n| --- | ---: |\n"
        f"| SOA checks per second, probe alone, 2 targets × {args.zones} zones | {rate:.0f} |\n"
        f"| checks that did not find the served serial | {wrong} |\n"
        f"| BIND9's own SOA answer rate, one server (dnsperf, 4 clients, "
        f"{args.seconds} s) | {ceiling:.0f} |\n"
    )
    print(body)
    if not args.no_write:
        report.write_section("audit", "Audit: SOA checks against BIND9", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
