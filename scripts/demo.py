"""`make run`: a working zoneflow pool on this machine, then serve until Ctrl-C, SIGTERM or SIGHUP.

Starts two real BIND9 servers on 127.0.0.1, zoneflow in all-in-one mode
(SQLite, the in-process zake jobboard, conductor and mdns in this process;
ZONEFLOW_JOBBOARD=zookeeper starts a local ZooKeeper and uses it instead),
creates a demo zone with a few records, shows what both nameservers answer
and what the REST API (Designate's v2, on 127.0.0.1:9001 when that port is
free) lists, and tells you what to try next. Everything lives in ./.run/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402
from zoneflow.local import targets  # noqa: E402
from zoneflow.local.ports import PORT_RANGE_ENV, free_port  # noqa: E402

DEMO_ZONE = "demo.example."
# The project the demo zone belongs to, as a zone made through the API would.
DEMO_PROJECT = "demo"
RECORDS = [
    ("www", "A", ["192.0.2.10", "192.0.2.11"]),
    ("www", "AAAA", ["2001:db8::10"]),
    ("@", "MX", ["10 mail.demo.example."]),
    ("mail", "A", ["192.0.2.25"]),
    ("@", "TXT", ['"v=spf1 mx -all"']),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / ".run"), help="state directory")
    args = parser.parse_args()
    state = pathlib.Path(args.dir)
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    # `kill` and a closed terminal stop the demo as Ctrl-C does: servers and all.
    with targets.stopped_by_signals():
        try:
            return _run(state)
        except KeyboardInterrupt:
            print("\nstopped before the demo was up")
            return 130


def _run(state: pathlib.Path) -> int:
    binds: list[targets.LocalNameserver] = []
    zookeeper: ZooKeeperServer | None = None
    try:
        mdns_port = free_port()
        binds = targets.start("bind9", 2, state, notify=[("127.0.0.1", mdns_port)])
        jobboard = os.environ.get("ZONEFLOW_JOBBOARD", "zake")
        zk_hosts = ""
        if jobboard == "zookeeper":
            zookeeper = ZooKeeperServer(workdir=state / "zookeeper").start()
            zk_hosts = zookeeper.hosts
        conf = _write_config(state, mdns_port, _api_port(), jobboard, zk_hosts)
        pool = targets.pool("bind9", binds, [("127.0.0.1", mdns_port)], ns_domain=DEMO_ZONE)
        pools_file = targets.write_pools(state / "pools.yaml", [pool])
        return _demo(conf, pools_file, binds)
    finally:
        if zookeeper is not None:
            zookeeper.stop()
        targets.stop(binds)


def _api_port() -> int:
    """Designate's port when it is free, so the usual client settings work; else any.

    Any free one of $ZONEFLOW_PORT_RANGE when it is set: two demos started at once
    (the suite's workers) both found 9001 free, and the second could not bind it."""
    import socket

    if os.environ.get(PORT_RANGE_ENV, "").strip():
        return free_port()
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 9001))
        except OSError:
            return free_port()
    return 9001


def _write_config(
    state: pathlib.Path, mdns_port: int, api_port: int, jobboard: str, zk_hosts: str
) -> pathlib.Path:
    conf = state / "zoneflow.conf"
    lines = [
        "[database]",
        f"connection = sqlite:///{state}/zoneflow.sqlite",
        "[mdns]",
        "host = 127.0.0.1",
        f"port = {mdns_port}",
        "[api]",
        "host = 127.0.0.1",
        f"port = {api_port}",
        "access_log = false",
        "[jobboard]",
        f"backend = {jobboard}",
    ]
    if zk_hosts:
        lines.append(f"hosts = {zk_hosts}")
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _demo(
    conf: pathlib.Path,
    pools_file: pathlib.Path,
    binds: list[targets.LocalNameserver],
) -> int:
    from zoneflow import allinone, config, objects
    from zoneflow.central import pools
    from zoneflow.central import recordsets as central_recordsets
    from zoneflow.central import zones as central_zones

    config.setup([str(conf)])
    services = allinone.AllInOne()
    services.start()
    try:
        pools.update(str(pools_file))
        started = time.monotonic()
        zone = central_zones.create_zone(
            DEMO_ZONE, "hostmaster@demo.example", project_id=DEMO_PROJECT
        )
        for name, rtype, data in RECORDS:
            central_recordsets.create_recordset(
                DEMO_ZONE, name, rtype, data, project_id=DEMO_PROJECT
            )
        zone = _wait_active(zone.id)
        elapsed = time.monotonic() - started
        print(
            f"\n{zone.name} is {zone.status} at serial {zone.serial} "
            f"({elapsed:.2f}s after the first API call)\n"
        )
        if zone.status != objects.Status.ACTIVE:
            print(f"zone failed: {zone.error}")
            return 1
        for bind in binds:
            _show_dig(bind)
        assert services.api is not None
        _show_api(services.api.url)
        # Up from here: a stop asked while it still prints its hints (a test that
        # signals it on "zoneflow is running") is a stop like any later one.
        with contextlib.suppress(KeyboardInterrupt):
            _print_next_steps(conf, services.api.url)
            targets.wait_for_stop()
        print("\nstopping")
        return 0
    finally:
        services.stop()


def _wait_active(zone_id: str):  # type: ignore[no-untyped-def]
    from zoneflow import objects
    from zoneflow.storage import zones as stored_zones

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        zone = stored_zones.get_zone_any(zone_id)
        if zone is not None and zone.status != objects.Status.PENDING:
            return zone
        time.sleep(0.05)
    raise SystemExit("the demo zone did not become ACTIVE within 60s")


def _show_dig(bind: targets.LocalNameserver) -> None:
    print(f"$ dig @{bind.host} -p {bind.port} {DEMO_ZONE} AXFR +noall +answer")
    done = subprocess.run(
        ["dig", f"@{bind.host}", "-p", str(bind.port), DEMO_ZONE, "AXFR", "+noall", "+answer"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    print(done.stdout or done.stderr)


def _show_api(url: str) -> None:
    # noauth takes the caller's project from this header, as the API's users'
    # clients send it; the demo zone is that project's.
    print(f"$ curl -s -H 'X-Auth-Project-ID: {DEMO_PROJECT}' {url}/v2/zones")
    request = urllib.request.Request(f"{url}/v2/zones", headers={"X-Auth-Project-ID": DEMO_PROJECT})
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = json.load(response)
    for zone in listed["zones"]:
        print(f"  {zone['name']}  {zone['id']}  serial {zone['serial']}  {zone['status']}")
    print()


def _print_next_steps(conf: pathlib.Path, api_url: str) -> None:
    # The CLI acts for the demo's project, so the zones made in it are the project's too.
    zf = f"ZONEFLOW_CONFIG={conf} ZONEFLOW_PROJECT={DEMO_PROJECT} {ROOT / '.venv/bin/zoneflow'}"
    print("zoneflow is running (Ctrl-C, SIGTERM or SIGHUP stops it). In another terminal, try:")
    print(f"  {zf} zone list")
    print(f"  {zf} recordset create {DEMO_ZONE} api A --record 192.0.2.80 --wait")
    print(f"  {zf} zone status {DEMO_ZONE}")
    print(f"  {zf} job list")
    print(f"  {zf} flow show update-zone --format dot")
    print(f"The REST API (Designate's v2) is at {api_url}; see doc/api.md. E.g.:")
    print(f"  curl -s {api_url}/v2/zones -H 'X-Auth-Project-ID: {DEMO_PROJECT}' \\")
    print("       -H 'Content-Type: application/json' \\")
    print('       -d \'{"name": "mine.example.", "email": "me@mine.example"}\'')
    # keystoneauth's noauth sends no project: the caller is noauth's admin, who may
    # act as the demo's project (X-Auth-Sudo-Project-ID).
    print(
        f"  openstack --os-auth-type none --os-endpoint {api_url}/v2 zone list "
        f"--sudo-project-id {DEMO_PROJECT}"
    )
    print()


if __name__ == "__main__":
    sys.exit(main())
