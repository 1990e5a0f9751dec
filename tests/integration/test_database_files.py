"""The SQLite files zoneflow creates hold TSIG secrets: only their owner may read them."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import sys

from zoneflow import heartbeat
from zoneflow.storage import services, tsigkeys


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_db_sync_creates_the_database_file_0600(tmp_path: pathlib.Path) -> None:
    database = tmp_path / "fresh.sqlite"
    conf = tmp_path / "zoneflow.conf"
    conf.write_text(f"[database]\nconnection = sqlite:///{database}\n")

    done = subprocess.run(
        [sys.executable, "-m", "zoneflow.cli", "--config-file", str(conf), "db", "sync"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # The usual umask, under which SQLite alone makes its files readable by all.
        preexec_fn=lambda: os.umask(0o022),
    )

    assert done.returncode == 0, done.stderr
    assert _mode(database) == 0o600


def test_the_wal_and_shm_files_beside_the_database_are_0600(database: str) -> None:
    path = pathlib.Path(database.removeprefix("sqlite:///"))
    previous = os.umask(0o022)
    try:
        tsigkeys.create_tsigkey(
            {
                "name": "k",
                "algorithm": "hmac-sha256",
                "secret": "c2VjcmV0",
                "scope": "POOL",
                "resource_id": "p",
            }
        )
        # A pooled connection stays open, and with it the -wal and -shm files.
        services.heartbeat(heartbeat.API, "files-test", status="UP", capabilities={}, stats={})
    finally:
        os.umask(previous)

    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert name.exists(), f"{name} is not there"
        assert _mode(name) == 0o600, f"{name} is {oct(_mode(name))}"


def test_git_ignores_the_sqlite_files_a_checkout_run_leaves() -> None:
    checkout = pathlib.Path(__file__).resolve().parents[2]
    names = ["zoneflow.sqlite", "zoneflow.sqlite-wal", "zoneflow.sqlite-shm"]

    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout.split() == names, done.stderr
