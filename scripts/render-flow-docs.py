"""Regenerate the pictures in doc/flows/.

One SVG per flow kind, drawn for the two-server example pool `zoneflow flow
show` uses before any pool is loaded, and one of a real job: a create-zone
run by a conductor on the fake backend in a scratch database, with one of
its two targets failing below the pool's threshold, so the create is
reverted. That picture is drawn by `zoneflow job show ID --graph svg`.

Needs Graphviz (`dot`). Run it from the repository's virtualenv:

    .venv/bin/python scripts/render-flow-docs.py
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import tempfile
import time

from zoneflow import cli, config, flows, jobs, objects
from zoneflow.central import changes as central_changes
from zoneflow.central import drawing, pools
from zoneflow.central import zones as central_zones
from zoneflow.conductor import daemon
from zoneflow.flows import render
from zoneflow.flows import retire_target as target_flows
from zoneflow.storage import migration
from zoneflow.storage import zones as stored_zones
from zoneflow.taskflow_adapter import persistence

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Fake targets need no server; the nameservers are never asked anything,
# because the flow fails at the consensus check before propagation starts.
FAILING_POOL = """
- name: default
  description: two fake targets, the second failing every create
  threshold_percentage: 100
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  nameservers: [{host: 192.0.2.1, port: 53}, {host: 192.0.2.2, port: 53}]
  targets:
    - {type: fake, description: fake-1, options: {}}
    - {type: fake, description: fake-2, options: {fail: create}}
"""

REVERTED_JOB_SVG = "create-zone-reverted.svg"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "doc" / "flows"), help="where to write")
    args = parser.parse_args()
    out = pathlib.Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for path in render_flow_kinds(out):
        print(f"wrote {path}")
    print(f"wrote {render_reverted_job(out / REVERTED_JOB_SVG)}")
    return 0


def render_flow_kinds(out: pathlib.Path) -> list[pathlib.Path]:
    written = []
    for kind in sorted([*flows.FACTORIES, *target_flows.FACTORIES]):
        path = out / f"{kind}.svg"
        # The pool `zoneflow flow show` draws with when no --pool is given.
        dot = render.to_dot(drawing.flow_of(kind, drawing.example_pool_args()))
        path.write_bytes(render.to_image(dot, "svg"))
        written.append(path)
    return written


def render_reverted_job(path: pathlib.Path) -> pathlib.Path:
    with tempfile.TemporaryDirectory(prefix="zoneflow-docs-") as scratch:
        conf = pathlib.Path(scratch) / "zoneflow.conf"
        conf.write_text(
            f"[database]\nconnection = sqlite:///{scratch}/zoneflow.sqlite\n"
            # One try per target keeps the run short; retries are not the point here.
            "[flows]\ntarget_attempts = 1\n"
        )
        pools_file = pathlib.Path(scratch) / "pools.yaml"
        pools_file.write_text(FAILING_POOL)
        config.setup([str(conf)])
        # The job is meant to fail; the conductor's traceback of it is noise here.
        logging.getLogger("taskflow.conductors").setLevel(logging.ERROR)
        migration.upgrade()
        persistence.upgrade()
        pools.update(str(pools_file))

        conductor = daemon.Conductor("render-flow-docs")
        if conductor.relay is not None:
            central_changes.on_change(conductor.relay.wake)
        conductor.start()
        try:
            zone = central_zones.create_zone("example.com", "hostmaster@example.com")
            _wait_settled(zone.id)
        finally:
            conductor.stop()
        (job,) = jobs.list_jobs(persistence.get_backend())
        code = cli.main(
            ["--config-file", str(conf), "job", "show", job.id, "--graph", "svg"]
            + ["--output", str(path)]
        )
        persistence.reset()
    if code != 0:
        raise SystemExit(f"zoneflow job show --graph failed with exit status {code}")
    return path


def _wait_settled(zone_id: str, timeout: float = 30) -> None:
    """Wait until the zone's job has finished (the zone leaves PENDING)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        zone = stored_zones.get_zone_any(zone_id)
        if zone is not None and zone.status != objects.Status.PENDING:
            return
        time.sleep(0.05)
    raise SystemExit(f"the create-zone job did not finish within {timeout:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
