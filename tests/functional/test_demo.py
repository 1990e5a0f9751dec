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


# Each run of the demo shows its zone on one jobboard, then is stopped by one signal:
# the two runs cover both boards and both signals (a run costs about 10 s of CPU).
@pytest.mark.parametrize(
    ("jobboard", "sig"), [("zake", signal.SIGTERM), ("zookeeper", signal.SIGHUP)]
)
def test_the_demo_serves_its_zone_from_both_bind9_and_stops_them_on_a_signal(
    tmp_path: pathlib.Path, jobboard: str, sig: signal.Signals
) -> None:
    state = tmp_path / "run"
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(state)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "ZONEFLOW_JOBBOARD": jobboard, "PYTHONUNBUFFERED": "1"},
        )
    try:
        # The openstack hint is the last thing the demo prints before it waits.
        eventually(
            lambda: demo.poll() is not None or "--sudo-project-id demo" in log_path.read_text(),
            timeout=180,
            what="the demo to be up",
        )
        shown = log_path.read_text()
        assert demo.poll() is None, shown
        _assert_the_demo_shows_its_zone(shown)
        servers = foreground.children(demo.pid)
        # Two BIND9 servers, and the ZooKeeper of a demo on it: all stop with the demo.
        expected = sorted(["named", "named"] + (["java"] if jobboard == "zookeeper" else []))
        assert sorted(_program(pid) for pid in servers) == expected, servers
        ports = foreground.pool_ports(state / "pools.yaml")
        code = foreground.stop_and_check(demo, sig, servers, ports)
    finally:
        if demo.poll() is None:
            # Failed before its stop: its servers would outlive a kill of the demo alone.
            foreground.kill_with_children(demo)
    assert code == 0, log_path.read_text()
    assert "stopping" in log_path.read_text()


def _assert_the_demo_shows_its_zone(shown: str) -> None:
    assert "demo.example. is ACTIVE" in shown
    # dig's AXFR output from each server, as the demo prints it.
    transfers = shown.split("$ dig ")[1:]
    assert len(transfers) == 2
    for transfer in transfers:
        assert "www.demo.example.\t3600\tIN\tA\t192.0.2.10" in transfer
        assert "demo.example.\t\t3600\tIN\tMX\t10 mail.demo.example." in transfer
    assert "ZONEFLOW_PROJECT=demo " in shown and "zoneflow zone list" in shown
    assert "zone list --sudo-project-id demo" in shown  # the openstack command
    # The REST API served by the same all-in-one process lists the zone as its
    # project's: the demo zone belongs to the project the printed commands name.
    listing = shown.split("X-Auth-Project-ID: demo' ")[1].split("\n\n")[0]
    assert "/v2/zones" in listing
    assert "  demo.example.  " in listing and listing.rstrip().endswith("ACTIVE")


def _program(pid: int) -> str:
    return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
