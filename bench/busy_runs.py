"""The suite on a busy machine: N consecutive runs beside a CPU-bound neighbour.

Issue 14's goal for a calm suite: five consecutive runs of `make test` pass
while a second process keeps a core busy, as a CI runner shared with other
jobs would be. This starts that process (a Python loop that never sleeps),
runs the command N times one after the other, and stops the neighbour. Each
run's wall time and result (pass or fail, pytest's summary line) go into
doc/benchmarks.md, beside the machine and the date. Exits 1 if any run failed.

    python bench/busy_runs.py [--runs 5] [--no-write] [-- PYTEST ARGS...]

Without pytest arguments each run is `make test` (lint and the whole suite,
six workers); with them, `python -m pytest -q -p no:cacheprovider ARGS`
from the repository's root, e.g. `-- -n 2 tests/unit` to try the script
out in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

# pytest's last line: "658 passed, 1 warning in 401.2s (0:06:41)".
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error).*?) in [\d.]+s", re.M)
NEIGHBOUR = "while True:\n    pass\n"


@dataclasses.dataclass(frozen=True)
class Run:
    number: int
    seconds: float
    passed: bool
    summary: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="consecutive runs (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print, leave the doc alone")
    parser.add_argument("pytest_args", nargs="*", help="run pytest with these, not make test")
    args = parser.parse_args()
    command = _command(args.pytest_args)

    print(f"busy machine: {' '.join(command)}, {args.runs} run(s)", flush=True)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
    try:
        runs = [_run(number, command) for number in range(1, args.runs + 1)]
    finally:
        neighbour.kill()
        neighbour.wait()

    if not args.no_write:
        report.write_section("busy-runs", "The suite on a busy machine", describe(command, runs))
    return 0 if all(run.passed for run in runs) else 1


def _command(pytest_args: list[str]) -> list[str]:
    if not pytest_args:
        return ["make", "test"]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]


def _run(number: int, command: list[str]) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.monotonic() - started
    found = SUMMARY.findall(done.stdout)
    summary = found[-1][0] if found else f"no pytest summary (exit {done.returncode})"
    run = Run(number, seconds, done.returncode == 0, summary)
    print(f"run {number}: {seconds:.0f} s, {'pass' if run.passed else 'FAIL'}: {summary}")
    if not run.passed:
        # What failed, for the reader of the log: pytest's short summary.
        print("\n".join(done.stdout.splitlines()[-40:]), flush=True)
    return run


def describe(command: list[str], runs: list[Run]) -> str:
    shown = " ".join(command[command.index("pytest") :] if "pytest" in command else command)
    rows = "".join(
        f"| {r.number} | {r.seconds:.0f} | {'pass' if r.passed else '**FAIL**'} | {r.summary} |\n"
        for r in runs
    )
    failed = sum(not r.passed for r in runs)
    trial = (
        ""
        if command == ["make", "test"] and len(runs) >= 5
        else " A trial of the script, not the goal's figure: that is `make test` five times "
        "(`python bench/busy_runs.py`)."
    )
    return (
        f"`{shown}` run {len(runs)} time(s) in a row by `python bench/busy_runs.py`, "
        "while a second process (a Python loop that never sleeps) kept one core busy "
        f"throughout. {len(runs) - failed} of {len(runs)} passed.{trial}\n\n"
        "| run | wall (s) | result | pytest's summary |\n| ---: | ---: | --- | --- |\n" + rows
    )


if __name__ == "__main__":
    sys.exit(main())
