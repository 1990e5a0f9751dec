"""mdns benchmark: transfers and queries, side by side with BIND9 doing the same.

In one run, on the same machine and BIND9 build:

* **AXFR of a large zone into BIND9**: a BIND9 secondary adds the zone with
  mdns as its primary, until it serves the zone's SOA; next to a second
  BIND9 secondary doing the same from a BIND9 primary that holds the very
  same zone (loaded from the text mdns transferred). Also the bare transfer
  into ``dig`` from each, which leaves out the secondary's own loading work.
* **A one-record change, NOTIFY → served**: zoneflow changes one record
  (``central_recordsets.update_recordset``) and NOTIFYs the secondary, which fetches it
  by IXFR when mdns can give one; next to a dynamic update sent to the BIND9
  primary, which NOTIFYs its secondary itself. How each secondary fetched
  the change (IXFR or AXFR) is read from its log.
* **SOA queries per second** answered by mdns and by BIND9, measured with
  dnsperf (Debian ``dnsperf``) for the same query and the same time.

Figures go to doc/benchmarks.md between the ``mdns`` markers.

    python bench/mdns.py [--records 100000] [--rounds 5] [--updates 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.update  # noqa: E402
import dns.zone  # noqa: E402

from bench import report  # noqa: E402
from bench.orchestration import cpu_seconds  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.ports import HOST, free_port  # noqa: E402

ZONE = "big.bench.example."
POOL = """
- name: default
  ns_records: [{hostname: ns1.bench.example., priority: 1}]
  targets:
    - {type: fake, description: unused}
"""
POLL = 0.005
# SOA queries a second asked of mdns to read its CPU per query: a rate it keeps up with.
QUERY_RATE = 500


def serial_of(server: Bind9Server) -> int | None:
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, server.host, port=server.port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def wait_serial(server: Bind9Server, serial: int, started: float, timeout: float = 120) -> float:
    while serial_of(server) != serial:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{server!r} did not serve serial {serial} in {timeout}s")
        time.sleep(POLL)
    return time.monotonic() - started


def seed_zone(records: int) -> int:
    """A zone of ``records`` A records, bulk-inserted (central would take minutes)."""
    from tests import support
    from zoneflow.central import recordsets as central_recordsets
    from zoneflow.storage import reads as stored_reads

    support.bulk_zone(ZONE, records)
    # One change through central, so the zone's serial moves past the seed.
    central_recordsets.create_recordset(ZONE, "www", "A", ["192.0.2.1"])
    return stored_reads.get_zone(ZONE).serial


def client_axfr(host: str, port: int) -> float:
    """A bare AXFR into ``dig``: the transfer alone, no secondary's loading work.

    dig parses in C; a Python client would measure its own parsing instead.
    """
    started = time.monotonic()
    done = subprocess.run(
        ["dig", "-p", str(port), f"@{host}", ZONE, "AXFR", "+noall", "+answer", "+tries=1"],
        capture_output=True,
        check=True,
    )
    elapsed = time.monotonic() - started
    if done.stdout.count(b"\tSOA\t") < 2:
        raise RuntimeError(f"incomplete transfer from {host}:{port}: {done.stderr!r}")
    return elapsed


def add_secondary(secondary: Bind9Server, primary: tuple[str, int]) -> None:
    host, port = primary
    # A new file each time: named removes a deleted zone's file lazily, and
    # re-adding the zone on the old file would load it instead of transferring.
    spec = (
        f'type secondary; primaries {{ {host} port {port}; }}; file "big-{time.monotonic_ns()}.db";'
    )
    secondary.rndc("addzone", ZONE, f"{{ {spec} }};")


def secondary_axfr(secondary: Bind9Server, primary: tuple[str, int], serial: int) -> float:
    started = time.monotonic()
    add_secondary(secondary, primary)
    elapsed = wait_serial(secondary, serial, started)
    secondary.rndc("delzone", "-clean", ZONE)
    return elapsed


def records_per_transfer(secondary: Bind9Server, since: int) -> list[int]:
    """Records in each transfer the secondary logged since byte ``since`` of its log.

    BIND9 does not log whether a transfer was incremental; a one-record
    change that moves a handful of records came by IXFR, one that moves the
    whole zone came by AXFR.
    """
    log = secondary.log_path.read_text(errors="replace")[since:]
    return [int(n) for n in re.findall(r"Transfer completed: \d+ messages, (\d+) records", log)]


def transfers(counts: list[int]) -> str:
    return f"records per transfer: {min(counts)}–{max(counts)}" if counts else "no transfer logged"


def dnsperf(
    host: str, port: int, workdir: pathlib.Path, seconds: int, rate: int | None = None
) -> float:
    """SOA queries of ZONE a second, answered over ``seconds`` by 4 dnsperf clients: as
    many as the server takes, or ``rate`` a second."""
    program = shutil.which("dnsperf")
    if program is None:
        raise RuntimeError("dnsperf is not installed: apt-get install dnsperf")
    queries = workdir / "queries.txt"
    queries.write_text(f"{ZONE} SOA\n")
    command = [program, "-s", host, "-p", str(port), "-d", str(queries), "-l", str(seconds)]
    command += ["-c", "4"] + (["-Q", str(rate)] if rate else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    if match is None:
        raise RuntimeError(f"dnsperf printed no rate:\n{done.stdout}\n{done.stderr}")
    if lost and int(lost.group(1)):
        print(f"  ({host}:{port}: {lost.group(1)} queries lost)")
    return float(match.group(1))


def cpu_per_query(
    mdns: MdnsProcess, workdir: pathlib.Path, seconds: int, rate: int
) -> tuple[float, float]:
    """mdns's CPU (ms) per SOA query answered at ``rate`` a second, and the rate met."""
    before = cpu_seconds([mdns.process.pid])
    answered = dnsperf(HOST, mdns.port, workdir, seconds, rate)
    used = cpu_seconds([mdns.process.pid]) - before
    return 1000 * used / (answered * seconds), answered


@dataclasses.dataclass
class MdnsProcess:
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_mdns(workdir: pathlib.Path, database: str) -> MdnsProcess:
    """``zoneflow mdns`` on a free port, reading the benchmark's database."""
    port = free_port()
    conf = workdir / "zoneflow.conf"
    conf.write_text(f"[database]\nconnection = {database}\n[mdns]\nhost = {HOST}\nport = {port}\n")
    log = (workdir / "mdns.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "zoneflow.cli", "--config-file", str(conf), "mdns"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            dns.query.udp(dns.message.make_query(ZONE, "SOA"), HOST, port=port, timeout=0.5)
            return MdnsProcess(process, port)
        except (OSError, dns.exception.Timeout):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mdns did not start: see {workdir / 'mdns.log'}") from None
            time.sleep(0.1)


@dataclasses.dataclass
class Rig:
    """mdns and three BIND9 servers, the zone in storage and on the BIND9 primary."""

    mdns: tuple[str, int]
    primary: Bind9Server
    from_mdns: Bind9Server  # a secondary of mdns
    from_bind9: Bind9Server  # a secondary of the BIND9 primary
    serial: int

    def load_primary(self) -> None:
        """The BIND9 primary gets the same zone, as mdns transfers it."""
        host, port = self.mdns
        zone = dns.zone.from_xfr(dns.query.xfr(host, ZONE, port=port))
        zone.to_file(str(self.primary.workdir / "big.zone"), relativize=False)
        # It NOTIFYs its secondary at once after a dynamic update.
        notify = f"also-notify {{ {HOST} port {self.from_bind9.port}; }}"
        self.primary.rndc(
            "addzone",
            ZONE,
            f'{{ type primary; file "big.zone"; allow-update {{ {HOST}; }}; '
            f"notify explicit; notify-delay 0; {notify}; }};",
        )
        wait_serial(self.primary, self.serial, time.monotonic())

    @property
    def bind9(self) -> tuple[str, int]:
        return self.primary.host, self.primary.port


def measure_axfr(rig: Rig, rounds: int, records: int) -> list[tuple[str, list[float]]]:
    client: dict[str, list[float]] = {"mdns": [], "BIND9": []}
    into: dict[str, list[float]] = {"mdns": [], "BIND9": []}
    for _ in range(rounds):
        client["mdns"].append(client_axfr(*rig.mdns))
        client["BIND9"].append(client_axfr(*rig.bind9))
        into["mdns"].append(secondary_axfr(rig.from_mdns, rig.mdns, rig.serial))
        into["BIND9"].append(secondary_axfr(rig.from_bind9, rig.bind9, rig.serial))
        print(f"  AXFR into BIND9: mdns {into['mdns'][-1]:.2f}s, BIND9 {into['BIND9'][-1]:.2f}s")
    return [
        (f"AXFR {records} records, mdns → BIND9 secondary (addzone → served)", into["mdns"]),
        (f"AXFR {records} records, BIND9 primary → BIND9 secondary", into["BIND9"]),
        (f"AXFR {records} records, mdns → dig", client["mdns"]),
        (f"AXFR {records} records, BIND9 primary → dig", client["BIND9"]),
    ]


def measure_changes(rig: Rig, updates: int, records: int) -> list[tuple[str, list[float]]]:
    from zoneflow.central import recordsets as central_recordsets
    from zoneflow.dns import query
    from zoneflow.storage import reads as stored_reads

    for secondary, primary in ((rig.from_mdns, rig.mdns), (rig.from_bind9, rig.bind9)):
        add_secondary(secondary, primary)
        wait_serial(secondary, rig.serial, time.monotonic())
    mdns_log = rig.from_mdns.log_path.stat().st_size
    bind_log = rig.from_bind9.log_path.stat().st_size
    www = stored_reads.get_recordset(stored_reads.get_zone(ZONE).id, f"www.{ZONE}", "A")
    through_mdns, through_bind9 = [], []
    for i in range(updates):
        address = f"198.51.100.{i + 1}"
        central_recordsets.update_recordset(ZONE, www.id, records=[address])
        serial = stored_reads.get_zone(ZONE).serial
        started = time.monotonic()
        query.send_notify(ZONE, rig.from_mdns.host, rig.from_mdns.port, serial=serial)
        through_mdns.append(wait_serial(rig.from_mdns, serial, started))

        update = dns.update.UpdateMessage(ZONE)
        update.replace(f"www.{ZONE}", 300, "A", address)
        before = serial_of(rig.from_bind9)
        started = time.monotonic()
        dns.query.tcp(update, rig.primary.host, port=rig.primary.port, timeout=5)
        while serial_of(rig.from_bind9) == before:
            if time.monotonic() - started > 60:
                raise RuntimeError("the BIND9 secondary never got the dynamic update")
            time.sleep(POLL)
        through_bind9.append(time.monotonic() - started)
    moved_mdns = transfers(records_per_transfer(rig.from_mdns, mdns_log))
    moved_bind9 = transfers(records_per_transfer(rig.from_bind9, bind_log))
    return [
        (
            f"one-record change in the {records}-record zone, NOTIFY → served "
            f"(mdns → BIND9; {moved_mdns})",
            through_mdns,
        ),
        (
            f"same, dynamic update to the BIND9 primary → served by its secondary ({moved_bind9})",
            through_bind9,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="AXFRs of each kind")
    parser.add_argument("--updates", type=int, default=10, help="one-record changes of each kind")
    parser.add_argument("--seconds", type=int, default=5, help="dnsperf run length")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the doc")
    args = parser.parse_args()

    from tests import support

    with tempfile.TemporaryDirectory(prefix="zoneflow-bench-mdns-") as tmp:
        workdir = pathlib.Path(tmp)
        servers = [Bind9Server(workdir=workdir / name) for name in ("primary", "sec1", "sec2")]
        for server in servers:
            server.start()
        database = f"sqlite:///{workdir}/zoneflow.sqlite"
        with support.database(database, pools_yaml=POOL):
            print(f"seeding {args.records} records ...")
            serial = seed_zone(args.records)
            mdns = start_mdns(workdir, database)
            try:
                primary, from_mdns, from_bind9 = servers
                rig = Rig((HOST, mdns.port), primary, from_mdns, from_bind9, serial=serial)
                rig.load_primary()
                rows = measure_axfr(rig, args.rounds, args.records)
                rows += measure_changes(rig, args.updates, args.records)
                qps_mdns = dnsperf(*rig.mdns, workdir, args.seconds)
                secondary = (rig.from_mdns.host, rig.from_mdns.port)
                qps_bind9 = dnsperf(*secondary, workdir, args.seconds)
                cpu, met = cpu_per_query(mdns, workdir, args.seconds, QUERY_RATE)
            finally:
                mdns.stop()
                for server in servers:
                    server.close()

    body = (
        f"A {args.records}-record zone (A records) in SQLite, mdns as its own process "
        "(`zoneflow mdns`, as deployed); "
        "three BIND9 servers (a primary holding the same zone and two secondaries). "
        "AXFR rows: each secondary adds the zone and is timed until it serves the zone's SOA; "
        "the dig rows time the bare transfer. Change rows: from the NOTIFY (or the "
        "dynamic update) until the secondary serves the new serial; how it fetched the change "
        "is read from its log (a handful of records per transfer means IXFR).\n\n"
        + report.latency_table(rows)
        + f"\n| SOA queries per second (dnsperf, 4 clients, {args.seconds} s) | qps |\n"
        + "| --- | ---: |\n"
        + f"| mdns | {qps_mdns:.0f} |\n| BIND9 | {qps_bind9:.0f} |\n"
        + f"| ratio mdns / BIND9 | {qps_mdns / qps_bind9:.2f} |\n"
        + f"\nmdns's CPU per SOA query answered, {QUERY_RATE} a second asked (dnsperf -Q, "
        + f"{met:.0f} a second answered), from /proc: {cpu:.3f} ms.\n"
    )
    print(body)
    if not args.no_write:
        report.write_section("mdns", "mdns: transfers and queries next to BIND9", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
