"""`make run` works: the demo brings up a pool, both BIND9 servers answer the demo zone,
and the REST API lists it; `kill` and a closed terminal stop it, servers and all."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from tests.functional import foreground
from tests.support import eventually

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("jobboard", ["zake", "zookeeper"])
def test_the_demo_serves_its_zone_from_both_bind9(tmp_path: pathlib.Path, jobboard: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--once", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ZONEFLOW_JOBBOARD": jobboard},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo.example. is ACTIVE" in done.stdout
    # dig's AXFR output from each server, as the demo prints it.
    transfers = done.stdout.split("$ dig ")[1:]
    assert len(transfers) == 2
    for transfer in transfers:
        assert "www.demo.example.\t3600\tIN\tA\t192.0.2.10" in transfer
        assert "demo.example.\t\t3600\tIN\tMX\t10 mail.demo.example." in transfer
    assert "ZONEFLOW_PROJECT=demo " in done.stdout and "zoneflow zone list" in done.stdout
    assert "zone list --sudo-project-id demo" in done.stdout  # the openstack command
    # The REST API served by the same all-in-one process lists the zone as its
    # project's: the demo zone belongs to the project the printed commands name.
    listing = done.stdout.split("X-Auth-Project-ID: demo' ")[1].split("\n\n")[0]
    assert "/v2/zones" in listing
    assert "  demo.example.  " in listing and listing.rstrip().endswith("ACTIVE")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_demo_stops_its_bind9_servers_on_sigterm_and_sighup(
    tmp_path: pathlib.Path, sig: signal.Signals
) -> None:
    state = tmp_path / "run"
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(state)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "ZONEFLOW_JOBBOARD": "zake", "PYTHONUNBUFFERED": "1"},
        )
    try:
        eventually(
            lambda: demo.poll() is not None or "zoneflow is running" in log_path.read_text(),
            timeout=180,
            what="the demo to be up",
        )
        assert demo.poll() is None, log_path.read_text()
        servers = foreground.children(demo.pid)
        assert len(servers) == 2, f"expected two named, found pids {servers}"
        ports = foreground.pool_ports(state / "pools.yaml")
        code = foreground.stop_and_check(demo, sig, servers, ports)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert code == 0, log_path.read_text()
    assert "stopping" in log_path.read_text()
