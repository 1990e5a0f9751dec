"""Catalog zones at scale: a 10,000-member catalog from mdns, next to BIND9 serving the same.

In one run, on the same machine and BIND9 build, mdns as its own process
(``zoneflow mdns``, as deployed) on a SQLite database seeded with the zones:

* **AXFR of the catalog into dnspython** (``dns.query.xfr``), at 1,000 and at
  ``--zones`` members: the time until the last message, mdns's own CPU per
  transfer (from /proc), and the member PTRs counted (all, every time).
* **A new BIND9 onboarding every member** through the catalog
  (``catalog-zones``): timed from starting ``named`` until its log shows
  every member transferred (each member's SOA is then asked of it). Three
  runs of the same consumer configuration:

  - **BIND9's floor**: its primary is a BIND9 that holds the same catalog
    (transferred from mdns) and the same member zones;
  - **mdns**: its primary is mdns;
  - **mdns, while zones join**: zones are created through central at
    ``--churn`` a second during the onboarding, each followed by a NOTIFY of
    the catalog to the consumer (what a pool's jobs do), so the consumer
    transfers the whole catalog again while it transfers members.

  For the mdns runs: mdns's CPU, the most UDP queries it had in progress
  (its heartbeat's ``queries_in_progress_peak``), its "busy" and "behind"
  log lines, and the catalog transfers the consumer made (count, longest).

BIND9's default ``serial-query-rate`` (20) would cap any primary at 20 new
zones a second (10,000 zones: over 8 minutes, BIND9's own primary included);
every consumer here runs with the settings doc/backends.md recommends for a
target (zoneflow.local.bind9.RECOMMENDED_OPTIONS), the same for all.

    python bench/catalog_scale.py [--zones 10000] [--churn 25] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench import report  # noqa: E402
from tests.functional.deployment import soa_serials  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, free_port  # noqa: E402
from tests.support import Beside  # noqa: E402
from zoneflow.local.bind9 import RECOMMENDED_OPTIONS  # noqa: E402

CATALOG = "catalog.bench.example."
SMALL_CATALOG = "small-catalog.bench.example."
SMALL = 1000
POOLS = f"""
- name: default
  ns_records: [{{hostname: ns1.bench.example., priority: 1}}]
  targets: [{{type: fake, description: unused}}]
  catalog_zone: {{catalog_zone_fqdn: {CATALOG}, catalog_zone_refresh: 60}}
  provisioning: catalog
- name: small
  ns_records: [{{hostname: ns1.bench.example., priority: 1}}]
  targets: [{{type: fake, description: unused}}]
  catalog_zone: {{catalog_zone_fqdn: {SMALL_CATALOG}, catalog_zone_refresh: 60}}
  provisioning: catalog
"""
TRANSFERRED = re.compile(r"zone (\S+)/IN: transferred serial")
CATALOG_TRANSFER = re.compile(
    rf"transfer of '{re.escape(CATALOG.rstrip('.'))}/IN' from \S+: "
    r"Transfer completed: .*?([\d.]+) secs"
)


# -- mdns as its own process ----------------------------------------------------------


@dataclasses.dataclass
class Mdns:
    process: subprocess.Popen[bytes]
    port: int
    log: pathlib.Path

    def cpu(self) -> float:
        """Seconds of CPU the process used so far (user and system)."""
        fields = (
            pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        )
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_mdns(workdir: pathlib.Path, database: str, source: pathlib.Path | None) -> Mdns:
    """``zoneflow mdns`` on a free port, beating every second (its peak of queries in
    progress is read from the beats); ``source``: another zoneflow checkout to run."""
    port = free_port()
    conf = workdir / "zoneflow.conf"
    conf.write_text(
        f"[database]\nconnection = {database}\n[mdns]\nhost = {HOST}\nport = {port}\n"
        "[heartbeat]\ninterval = 1\n"
    )
    log = workdir / "mdns.log"
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    process = subprocess.Popen(
        [sys.executable, "-m", "zoneflow.cli", "--config-file", str(conf), "mdns"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=source or ROOT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            dns.query.udp(dns.message.make_query(CATALOG, "SOA"), HOST, port=port, timeout=0.5)
            return Mdns(process, port, log)
        except (OSError, dns.exception.Timeout):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mdns did not start: see {log}") from None
            time.sleep(0.1)


class PeakWatch(Beside):
    """The most UDP queries mdns had in progress, from its heartbeats, while it runs."""

    def __init__(self) -> None:
        self.peak = 0
        super().__init__()

    def _run(self) -> None:
        from zoneflow.storage import db, models

        # Twice a beat: each beat's peak is seen before the next replaces it.
        while not self._stop.wait(0.4):
            with db.connection() as conn:
                for (stats,) in conn.execute(
                    sa.select(models.ServiceStatus.stats).where(
                        models.ServiceStatus.service_name == "mdns"
                    )
                ):
                    self.peak = max(self.peak, int(stats.get("queries_in_progress_peak", 0)))


# -- the catalog into dnspython --------------------------------------------------------


def client_axfr(mdns: Mdns, catalog: str) -> tuple[float, float, int]:
    """Wall time, mdns's CPU and the member PTRs of one AXFR of ``catalog``."""
    zones = dns.name.from_text("zones", dns.name.from_text(catalog))
    cpu, started = mdns.cpu(), time.monotonic()
    answers = [
        rrset
        for message in dns.query.xfr(
            HOST, catalog, port=mdns.port, timeout=60, lifetime=300, relativize=False
        )
        for rrset in message.answer
    ]
    elapsed, used = time.monotonic() - started, mdns.cpu() - cpu
    soas = [rrset[0].serial for rrset in answers if rrset.rdtype == dns.rdatatype.SOA]
    if len(soas) != 2 or soas[0] != soas[1]:
        raise RuntimeError(f"the AXFR of {catalog} did not begin and end with one SOA: {soas}")
    members = sum(
        len(rrset)
        for rrset in answers
        if rrset.rdtype == dns.rdatatype.PTR and rrset.name.is_subdomain(zones)
    )
    return elapsed, used, members


def measure_client(mdns: Mdns, zones: int, rounds: int) -> tuple[str, list[list[str]]]:
    rows: list[tuple[str, list[float]]] = []
    cpu_rows: list[list[str]] = []
    for catalog, size in ((SMALL_CATALOG, SMALL), (CATALOG, zones)):
        times, cpus = [], []
        for _ in range(rounds):
            elapsed, used, members = client_axfr(mdns, catalog)
            if members != size:
                raise RuntimeError(f"AXFR of {catalog}: {members} members, {size} expected")
            times.append(elapsed)
            cpus.append(used)
        print(f"  AXFR of {size} members: {min(times):.2f}–{max(times):.2f} s")
        rows.append((f"AXFR of a {size}-member catalog, mdns → dnspython", times))
        cpu_rows.append([f"{size:,}", f"{sum(cpus) / len(cpus) * 1000:.0f}"])
    return report.latency_table(rows), cpu_rows


# -- BIND9 onboarding ------------------------------------------------------------------


class Bind9Primary(Bind9Server):
    """A BIND9 holding ``zones`` (name -> zone file in its work dir) as a primary."""

    def __init__(self, zones: dict[str, str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.zones = zones

    def prepare(self) -> None:
        super().prepare()
        with self.conf_path.open("a") as conf:
            for name, path in self.zones.items():
                conf.write(f'zone "{name}" {{ type primary; file "{path}"; }};\n')


def bind9_primary(
    workdir: pathlib.Path, mdns: Mdns, members: list[str], serial: int
) -> Bind9Primary:
    """A BIND9 primary of the catalog as mdns serves it and of every member zone."""
    workdir.mkdir(parents=True)
    catalog = dns.zone.from_xfr(dns.query.xfr(HOST, CATALOG, port=mdns.port, timeout=60))
    catalog.to_file(str(workdir / "catalog.zone"), relativize=False)
    zones = {CATALOG: "catalog.zone"}
    for index, name in enumerate(members):
        path = f"m{index:05d}.zone"
        (workdir / path).write_text(
            f"$ORIGIN {name}\n$TTL 3600\n"
            f"@ IN SOA ns1.bench.example. hostmaster.bench.example. {serial} 3600 600 86400 300\n"
            "@ IN NS ns1.bench.example.\n"
        )
        zones[name] = path
    # BIND9 serves 10 transfers at once by default and answers the 11th with
    # SERVFAIL, which the consumer retries only a minute later: mdns has no such
    # quota, and this one must not be the floor's.
    primary = Bind9Primary(
        zones, workdir=workdir, start_timeout=600.0, options=("transfers-out 100",)
    )
    primary.start()
    # named answers before it has loaded every zone: the clock starts once it serves all.
    check_served(primary, [*members, CATALOG], timeout=600)
    return primary


@dataclasses.dataclass
class Onboarding:
    seconds: float
    members: int
    joined: int = 0
    mdns_cpu: float | None = None
    peak: int | None = None
    busy: int | None = None
    behind: int | None = None
    catalog_transfers: list[float] = dataclasses.field(default_factory=list)


def transferred(consumer: Bind9Server, seen: set[str], offset: int) -> int:
    """Add the zones the consumer's log shows transferred since byte ``offset``; the new offset."""
    with consumer.log_path.open("rb") as log:
        log.seek(offset)
        text = log.read()
    end = text.rfind(b"\n") + 1  # a line being written is read next time
    seen.update(TRANSFERRED.findall(text[:end].decode(errors="replace")))
    return offset + end


def onboard(consumer: Bind9Server, members: list[str], timeout: float) -> float:
    """Start ``consumer`` and wait until it has transferred every member; the seconds taken."""
    wanted = {name.rstrip(".") for name in members}
    seen: set[str] = set()
    offset = 0
    started = time.monotonic()
    consumer.start()
    while not wanted <= seen:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(wanted - seen)} members not transferred in {timeout:.0f} s")
        time.sleep(0.2)
        offset = transferred(consumer, seen, offset)
    return time.monotonic() - started


def check_served(server: Bind9Server, zones: list[str], timeout: float = 120) -> None:
    """Every zone's SOA answered by ``server`` (a consumer's log said so; it must too)."""
    deadline = time.monotonic() + timeout
    missing = zones
    while missing:
        served = soa_serials(missing, server.host, server.port)
        missing = [name for name, serial in served.items() if serial is None]
        if missing and time.monotonic() > deadline:
            raise RuntimeError(f"{len(missing)} zones not served, e.g. {missing[:3]}")


class Churn(Beside):
    """Zones joining the catalog at ``rate`` a second while the block runs, each
    followed by a NOTIFY of the catalog to ``consumer``, as a pool's jobs send it."""

    def __init__(self, rate: float, consumer: Bind9Server) -> None:
        self.rate = rate
        self.consumer = consumer
        self.names: list[str] = []
        super().__init__()

    def _run(self) -> None:
        if self.rate <= 0:
            return
        from zoneflow.central import zones as central_zones
        from zoneflow.dns import query
        from zoneflow.storage import catalogs, pools

        pool_id = pools.get_pool("default").id
        due = time.monotonic()
        while not self._stop.is_set():
            name = f"j{len(self.names):05d}.churn.example."
            central_zones.create_zone(name, "hostmaster@churn.example")
            self.names.append(name)
            catalog = catalogs.get_catalog(pool_id)
            assert catalog is not None
            # Unanswered while named starts, or is too busy: its refresh comes anyway.
            with contextlib.suppress(OSError, dns.exception.Timeout):
                query.send_notify(
                    CATALOG, self.consumer.host, self.consumer.port, serial=catalog.serial
                )
            due += 1 / self.rate
            self._stop.wait(max(0.0, due - time.monotonic()))


def catalog_transfers(consumer: Bind9Server) -> list[float]:
    """The seconds each of the consumer's transfers of the catalog took, from its log."""
    return [
        float(s) for s in CATALOG_TRANSFER.findall(consumer.log_path.read_text(errors="replace"))
    ]


def consumer_of(primary: tuple[str, int], workdir: pathlib.Path) -> Bind9Server:
    host, port = primary
    return Bind9Server(catalog=(CATALOG, host, port), workdir=workdir, start_timeout=120.0)


def from_mdns(
    workdir: pathlib.Path, mdns: Mdns, members: list[str], churn: float, timeout: float
) -> Onboarding:
    consumer = consumer_of((HOST, mdns.port), workdir)
    busy, behind, cpu = mdns.log_count("mdns is busy"), mdns.log_count("mdns is behind"), mdns.cpu()
    try:
        with PeakWatch() as peak, Churn(churn, consumer) as joining:
            seconds = onboard(consumer, members, timeout)
        run = Onboarding(
            seconds,
            len(members),
            joined=len(joining.names),
            mdns_cpu=mdns.cpu() - cpu,
            peak=peak.peak,
            busy=mdns.log_count("mdns is busy") - busy,
            behind=mdns.log_count("mdns is behind") - behind,
        )
        # The zones that joined during it are in the catalog too: served as well.
        check_served(consumer, members + joining.names)
        run.catalog_transfers = catalog_transfers(consumer)
        return run
    finally:
        consumer.close()


def from_bind9(
    workdir: pathlib.Path, mdns: Mdns, members: list[str], serial: int, timeout: float
) -> Onboarding:
    print(f"  loading {len(members)} zones into the BIND9 primary ...")
    primary = bind9_primary(workdir / "primary", mdns, members, serial)
    consumer = consumer_of((primary.host, primary.port), workdir / "consumer")
    try:
        seconds = onboard(consumer, members, timeout)
        check_served(consumer, members)
        return Onboarding(seconds, len(members), catalog_transfers=catalog_transfers(consumer))
    finally:
        consumer.close()
        primary.close()


# -- the report ------------------------------------------------------------------------


def onboarding_table(rows: list[tuple[str, Onboarding]], floor: Onboarding) -> str:
    lines = [
        "| primary | members | every member served after (s) | members/s | × BIND9's time "
        "| mdns CPU, s (ms per member) | most UDP queries in progress "
        '| "busy" / "behind" log lines '
        "| catalog transfers (longest, s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in rows:
        mdns = run.mdns_cpu is not None
        cpu = (
            f"{run.mdns_cpu:.1f} ({run.mdns_cpu / run.members * 1000:.1f})"
            if run.mdns_cpu is not None
            else "–"
        )
        transfers = run.catalog_transfers
        lines.append(
            f"| {label} | {run.members:,} | {run.seconds:.1f} | {run.members / run.seconds:.0f} "
            f"| {run.seconds / floor.seconds:.2f} "
            f"| {cpu} "
            f"| {run.peak if mdns else '–'} "
            f"| {f'{run.busy} / {run.behind}' if mdns else '–'} "
            f"| {len(transfers)} ({max(transfers, default=0):.2f}) |"
        )
    return "\n".join(lines) + "\n"


def seed(zones: int) -> tuple[list[str], int]:
    """The catalogs' zones in storage: ``zones`` in the default pool, 1,000 in the small one."""
    from tests import support
    from zoneflow.storage import pools, reads

    members = support.bulk_zones(zones, pool_id=pools.get_pool("default").id)
    support.bulk_zones(SMALL, pool_id=pools.get_pool("small").id, suffix="small.example.")
    return members, reads.get_zone(members[0]).serial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000, help="members of the big catalog")
    parser.add_argument("--rounds", type=int, default=3, help="AXFRs of each catalog")
    parser.add_argument(
        "--churn", type=float, default=25.0, help="zones joining a second in the third run"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per onboarding")
    parser.add_argument(
        "--mdns-from",
        type=pathlib.Path,
        help="run mdns from another zoneflow checkout (to compare before and after a change; "
        "implies --no-write)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the doc")
    args = parser.parse_args()

    from tests import support

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zoneflow-bench-catalog-") as tmp:
        workdir = pathlib.Path(tmp)
        database = f"sqlite:///{workdir}/zoneflow.sqlite"
        with support.database(database, pools_yaml=POOLS):
            print(f"seeding {args.zones:,} + {SMALL:,} zones ...")
            members, serial = seed(args.zones)
            mdns = start_mdns(workdir, database, args.mdns_from)
            try:
                print("AXFR of the catalogs into dnspython ...")
                axfr_table, cpu_rows = measure_client(mdns, args.zones, args.rounds)
                print("BIND9 onboarding from mdns ...")
                quiet = from_mdns(workdir / "quiet", mdns, members, 0, args.timeout)
                print(f"  {quiet.seconds:.1f} s")
                print("BIND9 onboarding from a BIND9 primary ...")
                floor = from_bind9(workdir / "floor", mdns, members, serial, args.timeout)
                print(f"  {floor.seconds:.1f} s")
                print(f"BIND9 onboarding from mdns while {args.churn:g} zones a second join ...")
                busy = from_mdns(workdir / "churn", mdns, members, args.churn, args.timeout)
                print(f"  {busy.seconds:.1f} s, {busy.joined} zones joined")
            finally:
                mdns.stop()

    load_after = os.getloadavg()[0]
    cpu_table = "| catalog members | mdns CPU per AXFR (ms) |\n| ---: | ---: |\n" + "".join(
        f"| {size} | {cpu} |\n" for size, cpu in cpu_rows
    )
    rows = [
        ("BIND9 (the same catalog and zones)", floor),
        ("mdns", quiet),
        (f"mdns, while {busy.joined} zones joined ({args.churn:g}/s, a NOTIFY each)", busy),
    ]
    body = (
        f"Catalogs of {SMALL:,} and {args.zones:,} zones in SQLite, mdns as its own process "
        "(`zoneflow mdns`, as deployed). The machine was shared: a 1-minute load average "
        f"of {load_before:.1f} when the run began and {load_after:.1f} when it ended, on "
        f"{os.cpu_count()} cores.\n\n"
        "**AXFR of the catalog into dnspython** (`dns.query.xfr`, until the last message; "
        "the client's own parsing is most of the wall time). Every transfer held every member "
        "and began and ended with the same SOA.\n\n"
        + axfr_table
        + "\n"
        + cpu_table
        + "\n**A new BIND9 onboarding every member through the catalog** (`catalog-zones`), "
        "from starting `named` until its log shows every member transferred; every member's "
        "SOA was then answered by it. The same consumer settings in every run "
        f"({'; '.join(RECOMMENDED_OPTIONS)}; BIND9's default serial-query-rate of 20 would hold "
        f"any primary, BIND9 included, to 20 new zones a second). In the last run zones were "
        "created through central during the onboarding, each followed by a NOTIFY of the "
        "catalog to the consumer, as a pool's jobs send it: the consumer transferred the whole "
        "catalog again while it transferred members (the zones that joined were served too).\n\n"
        + onboarding_table(rows, floor)
    )
    print(body)
    if not args.no_write and args.mdns_from is None:
        report.write_section("catalog-scale", "Catalog zones: 10,000 members from mdns", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
