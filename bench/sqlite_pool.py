"""A new SQLite database holding zoneflow's schema and one pool of a fake target,
made through the ``zoneflow`` command: where the benchmarks that time zoneflow's
own processes (cli_startup, gc_pauses) start from."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

POOLS = (
    "- name: default\n  ns_records: [{hostname: ns1.example.org., priority: 1}]\n"
    "  targets:\n    - {type: fake, description: fake1, options: {}}\n"
)


def fake_pool_database(state: pathlib.Path) -> pathlib.Path:
    """``state``/zoneflow.conf naming a new ``state``/zoneflow.sqlite (one there is
    replaced), synced and given the pool; the configuration file's path."""
    database = state / "zoneflow.sqlite"
    database.unlink(missing_ok=True)
    config = state / "zoneflow.conf"
    config.write_text(f"[database]\nconnection = sqlite:///{database}\n")
    pools = state / "pools.yaml"
    pools.write_text(POOLS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)}
    for args in (["db", "sync"], ["pool", "update", "--file", str(pools)]):
        subprocess.run(
            [sys.executable, "-m", "zoneflow.cli", *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return config
