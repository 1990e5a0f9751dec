"""bench/coalescing.py runs each of its ways to the end.

Its "one job per change" way stands in for three functions of the outbox;
when one of them took a new argument, that way failed every job it ran,
and nothing noticed until the benchmark was run again by hand.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_each_way_of_the_coalescing_benchmark_runs_its_changes_as_it_says() -> None:
    ran = subprocess.run(
        [sys.executable, "bench/coalescing.py", "--zones", "2", "--updates", "2"]
        + ["--single", "2", "--targets", "2", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr[-3000:]
    rows = {}
    for line in ran.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[1].isdigit():
            rows[cells[0]] = (int(cells[1]), int(cells[2]))  # changes, jobs run
    # Each way ended only once every zone was ACTIVE at its last serial and every
    # job had ended (the benchmark waits for both): four changes, in jobs.
    assert set(rows) == {"one job per change", "coalesced", "coalesced, batches of 10"}
    assert all(changes == 4 and jobs >= 1 for changes, jobs in rows.values()), rows
