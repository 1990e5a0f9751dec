"""How long Python's garbage collector stops a zoneflow daemon, with and without
the freeze each daemon makes once its modules are imported (zoneflow/cli/daemons.py).

A full collection (generation 2) walks every object the process tracks and
holds the GIL while it does: no thread answers a query, runs a task or polls
meanwhile. Two measurements, each in a fresh process per sample:

- a full collection right after a daemon's modules are imported (what the
  conductor, mdns and the API hold before they serve), not frozen and frozen;
- ``--requests`` recordset updates through the API's app (in-process, a SQLite
  database in a temporary directory), each full collection during them timed,
  not frozen and frozen, turn about ``--rounds`` times.

    python bench/gc_pauses.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report, sqlite_pool  # noqa: E402

DAEMONS = {
    "conductor": "zoneflow.conductor.daemon",
    "mdns": "zoneflow.mdns.server",
    "api": "zoneflow.api.server",
}

# One sample, run in a process of its own: prints a JSON line.
_IMPORTED = """
import gc, importlib, json, sys, time
from zoneflow import config
config.setup()
importlib.import_module(sys.argv[1])
if sys.argv[2] == "frozen":
    gc.freeze()
started = time.perf_counter()
gc.collect()
print(json.dumps({"pause": time.perf_counter() - started, "tracked": len(gc.get_objects())}))
"""

_REQUESTS = """
import gc, json, sys, time
from fastapi.testclient import TestClient
from zoneflow import config
config.setup()
import zoneflow.api.server  # what `zoneflow api` imports before it serves
from zoneflow.api import app
from zoneflow.central import recordsets, zones
# The project the API's default auth (none) acts for.
zone = zones.create_zone("gc.example.", "hostmaster@gc.example", project_id="noauth-project")
recordset = recordsets.create_recordset(
    zone.id, "www", "A", ["192.0.2.1"], project_id="noauth-project"
)
pauses = []
started = {}
def timed(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            started["at"] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started["at"])
if sys.argv[2] == "frozen":
    gc.freeze()
gc.callbacks.append(timed)
url = f"/v2/zones/{zone.id}/recordsets/{recordset.id}"
with TestClient(app.create_app()) as client:
    cpu = time.process_time()
    for i in range(int(sys.argv[1])):
        answer = client.put(url, json={"records": [f"192.0.2.{i % 250 + 1}"]})
        assert answer.status_code == 202, answer.text
    cpu = time.process_time() - cpu
print(json.dumps({"pauses": pauses, "cpu": cpu}))
"""


def _sample(script: str, args: list[str], config: pathlib.Path) -> dict:
    """Run ``script`` with ``args`` on the database of ``config``; its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"a sample failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    imported = [
        "| daemon's modules | objects tracked | full collection, not frozen (ms) | frozen (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    served = [
        "| round | heap | full collections | their pauses: total (ms) | longest (ms) "
        "| CPU a request (ms) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        state = pathlib.Path(tmp)
        config = sqlite_pool.fake_pool_database(state)
        for name, module in DAEMONS.items():
            plain = [_sample(_IMPORTED, [module, "plain"], config) for _ in range(args.rounds)]
            frozen = [_sample(_IMPORTED, [module, "frozen"], config) for _ in range(args.rounds)]
            imported.append(
                f"| {name} ({module}) | {plain[0]['tracked']:,} "
                f"| {statistics.median(s['pause'] for s in plain) * 1000:.1f} "
                f"| {statistics.median(s['pause'] for s in frozen) * 1000:.1f} |"
            )
            print(imported[-1])
        for round_ in range(1, args.rounds + 1):
            for heap in ("not frozen", "frozen"):
                mode = "frozen" if heap == "frozen" else "plain"
                # A new database each: the zone the sample makes is its own.
                config = sqlite_pool.fake_pool_database(state)
                got = _sample(_REQUESTS, [str(args.requests), mode], config)
                pauses = got["pauses"]
                served.append(
                    f"| {round_} | {heap} | {len(pauses)} | {sum(pauses) * 1000:.0f} "
                    f"| {max(pauses, default=0) * 1000:.0f} "
                    f"| {got['cpu'] / args.requests * 1000:.2f} |"
                )
                print(served[-1])
    body = (
        "A full collection right after a daemon's modules are imported (median of "
        f"{args.rounds}, each in a new process):\n\n"
        + "\n".join(imported)
        + f"\n\n{args.requests} recordset updates through the API's app in one process "
        "(FastAPI's TestClient, SQLite, a pool of one fake target), each full "
        "collection during them timed; the two heaps turn about:\n\n" + "\n".join(served) + "\n"
    )
    if not args.no_write:
        report.write_section("gc_pauses", "Garbage collection pauses in a daemon", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
