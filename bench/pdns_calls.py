"""What a PowerDNS target costs per zone created, and whether its API has a batch step.

PowerDNS's HTTP API creates one zone a POST; a batch could at most share one
connection among its calls. Against a real pdns_server (the test fixtures'
PowerDNSServer, gsqlite3), side by side: ``PowerDNSBackend.create_zone`` as a
job's task on the target calls it (a zone added as a secondary of its master,
then ``axfr-retrieve``, each call on a connection of its own), and the same
two calls on one HTTP/1.1 connection kept open (``http.client``), counting
the answers that close it. Wall time and CPU per zone: this process and pdns_server
(from /proc). The zones' master is a port nobody listens on.

    python bench/pdns_calls.py [--zones 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import pathlib
import sys
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.orchestration import cpu_seconds  # noqa: E402
from tests.functional.fixtures.pdns import PowerDNSServer  # noqa: E402
from tests.functional.fixtures.ports import HOST, free_port  # noqa: E402
from tests.support import make_zone, pool_target  # noqa: E402
from zoneflow.backends.impl_pdns import PowerDNSBackend  # noqa: E402


def measure(pdns: PowerDNSServer, zones: int) -> list[list[str]]:
    assert pdns.process is not None
    master = (HOST, free_port())
    backend = PowerDNSBackend(pool_target(pdns.pool_target([master])))
    endpoint = urllib.parse.urlsplit(pdns.api_endpoint)
    headers = {"X-API-Key": pdns.api_key, "Content-Type": "application/json"}
    rows = []

    def timed(label: str, create: object, calls: int) -> list[str]:
        server, mine, started = cpu_seconds([pdns.process.pid]), time.process_time(), time.time()
        closed = create()  # type: ignore[operator]
        wall = time.time() - started
        server = cpu_seconds([pdns.process.pid]) - server
        mine = time.process_time() - mine
        return [
            label,
            str(calls),
            "–" if closed is None else f"{closed} of {calls * zones}",
            f"{wall / zones * 1000:.2f}",
            f"{server / zones * 1000:.2f}",
            f"{mine / zones * 1000:.2f}",
        ]

    def one_by_one() -> None:
        for i in range(zones):
            backend.create_zone(make_zone(name=f"each{i}.pdns.example."))

    def kept_open() -> int:
        connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
        closed = 0
        for i in range(zones):
            name = f"kept{i}.pdns.example."
            body = {"name": name, "kind": "Secondary", "masters": [f"{master[0]}:{master[1]}"]}
            for method, path, data in (
                ("POST", "/zones", json.dumps(body)),
                ("PUT", f"/zones/{name}/axfr-retrieve", None),
            ):
                connection.request(method, f"/api/v1/servers/localhost{path}", data, headers)
                answer = connection.getresponse()
                answer.read()
                closed += answer.getheader("Connection", "").lower() == "close"
        connection.close()
        return closed

    rows.append(timed("PowerDNSBackend.create_zone, each call its own connection", one_by_one, 2))
    rows.append(timed("the same two calls, on one connection kept open", kept_open, 2))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with PowerDNSServer() as pdns:
        rows = measure(pdns, args.zones)
    body = (
        f"A real pdns_server (gsqlite3, the test fixtures'), {args.zones} zones created as "
        "secondaries of a master nobody answers (bench/pdns_calls.py). PowerDNS's API has no "
        "call for several zones: a zone is one POST (and an axfr-retrieve), and a batch could "
        "at most share one connection among its calls. Per zone: wall time, and CPU of "
        "pdns_server and of this process.\n\n"
        + report.markdown_table(
            [
                "calls",
                "API calls a zone",
                "answers that closed the connection",
                "wall ms a zone",
                "pdns_server CPU ms a zone",
                "client CPU ms a zone",
            ],
            rows,
        )
    )
    print(body)
    if not args.no_write:
        report.write_section("pdns-calls", "PowerDNS backend: what a zone costs, and batches", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
