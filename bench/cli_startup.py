"""How long the ``zoneflow`` command takes to start: ``--help`` and ``zone list``.

Each command runs ``--runs`` times as a fresh process (``python -m
zoneflow.cli``), as a user's shell runs it, against a SQLite database in a
temporary directory holding ``--zones`` zones. Wall time is what the user
waits; CPU time (user + system, of the child) is what the start-up costs
and moves less with the machine's load, given with the load average before
the run. Goal: 0.3 s wall for both.

``--compare DIR`` also runs the commands with the zoneflow package found in
DIR (e.g. an older checkout, named ``--compare-as`` in the table), turn about.

    python bench/cli_startup.py [--runs 20] [--zones 100] [--compare DIR --compare-as LABEL]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

COMMANDS = (("zoneflow --help", ["--help"]), ("zoneflow zone list", ["zone", "list"]))


def _run(code: pathlib.Path, config: pathlib.Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``zoneflow ARGS`` process."""
    env = {**os.environ, "PYTHONPATH": str(code), "ZONEFLOW_CONFIG": str(config)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "zoneflow.cli", *args],
        env=env,
        # Not a checkout: `python -m` looks in its working directory first.
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _prepare(state: pathlib.Path, zones: int) -> pathlib.Path:
    """A zoneflow.conf on a new SQLite database with a pool and ``zones`` zones."""
    config = state / "zoneflow.conf"
    config.write_text(f"[database]\nconnection = sqlite:///{state}/zoneflow.sqlite\n")
    pools = state / "pools.yaml"
    pools.write_text(
        "- name: default\n  ns_records: [{hostname: ns1.example.org., priority: 1}]\n"
        "  targets:\n    - {type: fake, description: fake1, options: {}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)}
    zoneflow = [sys.executable, "-m", "zoneflow.cli"]
    for args in (["db", "sync"], ["pool", "update", "--file", str(pools)]):
        subprocess.run([*zoneflow, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    script = (
        "from zoneflow import config\n"
        "from zoneflow.central import api as central\n"
        "config.setup()\n"
        f"for i in range({zones}):\n"
        "    central.create_zone(f'zone{i}.example', 'hostmaster@example.com')\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    return config


def _row(label: str, samples: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in samples]
    cpus = [cpu for _, cpu in samples]
    return (
        f"| {label} | {len(samples)} | {report.percentile(walls, 50):.2f} | "
        f"{report.percentile(walls, 90):.2f} | {report.percentile(cpus, 50):.2f} | "
        f"{report.percentile(cpus, 90):.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--zones", type=int, default=100)
    parser.add_argument("--compare", type=pathlib.Path, metavar="DIR")
    parser.add_argument("--compare-as", default="the other checkout", metavar="LABEL")
    args = parser.parse_args()
    codes = [("this checkout", ROOT)]
    if args.compare is not None:
        codes.append((args.compare_as, args.compare.resolve()))
    load = os.getloadavg()[0]
    rows = [
        "| command | code | n | wall p50 (s) | wall p90 (s) | CPU p50 (s) | CPU p90 (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as state:
        config = _prepare(pathlib.Path(state), args.zones)
        for command, argv in COMMANDS:
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in codes}
            for _ in range(args.runs):
                # Turn about, so that a busy moment of the machine costs each code alike.
                for name, code in codes:
                    samples[name].append(_run(code, config, argv))
            for name, _ in codes:
                rows.append(_row(f"`{command}` | {name}", samples[name]))
                print(rows[-1])
    body = (
        f"Each command run {args.runs} times as a new process, `zone list` listing "
        f"{args.zones} zones of a SQLite database; load average {load:.1f} before the "
        "run (the CPU columns move less with it than the wall ones). Goal: 0.3 s wall. "
        "Nearly all of `zone list`'s time is importing SQLAlchemy, oslo.db and the storage "
        "models it reads zones with (cProfile); `--help` imports none of them.\n\n"
        + "\n".join(rows)
        + "\n"
    )
    report.write_section("cli_startup", "CLI start-up", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
