"""How long the ``zoneflow`` command takes to start: ``--help`` and the read commands.

Each command runs ``--runs`` times as a fresh process (``python -m
zoneflow.cli``), as a user's shell runs it, against a SQLite database in a
temporary directory holding ``--zones`` zones (one with a few recordsets).
Wall time is what the user waits; CPU time (user + system, of the child) is
what the start-up costs and moves less with the machine's load, given with
the load average before and after the run. Goal: 0.3 s wall for each.

Python's bytecode is kept (in the temporary directory), as an installed
zoneflow has it, even where PYTHONDONTWRITEBYTECODE is set: compiling
zoneflow's modules again in every run would add up to 0.1 s that no user
pays. One run of each command, not counted, writes it.

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

from bench import report, sqlite_pool  # noqa: E402

FLOOR_IMPORTS = "import oslo_config.cfg, sqlalchemy.dialects.sqlite"
ZONEFLOW = ["-m", "zoneflow.cli"]
# An oslo.config environment override (of the connection by the same URL) keeps
# zone list off its fast path (zoneflow/storage/fastread.py): what it saves.
FULL_PATH = "OS_DATABASE__CONNECTION"
# (what the table calls it, python's arguments, run with each code compared, full path)
COMMANDS = (
    ("zoneflow --help", [*ZONEFLOW, "--help"], True, False),
    ("zoneflow zone list", [*ZONEFLOW, "zone", "list"], True, False),
    ("zoneflow zone show", [*ZONEFLOW, "zone", "show", "zone1.example"], True, False),
    (f"zoneflow zone list, {FULL_PATH} set", [*ZONEFLOW, "zone", "list"], False, True),
    ("zoneflow recordset list", [*ZONEFLOW, "recordset", "list", "zone1.example"], True, False),
    # A change: its job written to the outbox (no ZooKeeper here, nothing to post to).
    (
        "zoneflow recordset update",
        [*ZONEFLOW, "recordset", "update", "zone1.example", "www.zone1.example."]
        + ["--type", "A", "--record", "192.0.2.9"],
        True,
        False,
    ),
    # What a read command off the fast path cannot go below while it reads its
    # configuration with oslo.config and the database with SQLAlchemy.
    ("floor: import oslo.config, SQLAlchemy", ["-c", FLOOR_IMPORTS], False, False),
)


def _run(
    code: pathlib.Path, config: pathlib.Path, args: list[str], *, full_path: bool = False
) -> tuple[float, float]:
    """Wall and CPU seconds of one ``python ARGS`` process."""
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("OS_")
        },
        "PYTHONPATH": str(code),
        "ZONEFLOW_CONFIG": str(config),
        # Beside the database, so that no checkout is written to; the cache
        # mirrors each source file's own path, so the codes compared keep apart.
        "PYTHONPYCACHEPREFIX": str(config.parent / "pycache"),
    }
    if full_path:
        env[FULL_PATH] = f"sqlite:///{config.parent}/zoneflow.sqlite"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
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
    config = sqlite_pool.fake_pool_database(state)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)}
    script = (
        "from zoneflow import config\n"
        "from zoneflow.central import recordsets as central_recordsets\n"
        "from zoneflow.central import zones as central_zones\n"
        "config.setup()\n"
        f"for i in range({zones}):\n"
        "    central_zones.create_zone(f'zone{i}.example', 'hostmaster@example.com')\n"
        "for name in ('www', 'mail', 'ftp'):\n"
        "    central_recordsets.create_recordset(\n"
        "        'zone1.example', name, 'A', ['192.0.2.1', '192.0.2.2']\n"
        "    )\n"
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
        for command, argv, compared, full_path in COMMANDS:
            runs = codes if compared else codes[:1]
            for _, code in runs:
                _run(code, config, argv, full_path=full_path)  # writes the bytecode
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in runs}
            for _ in range(args.runs):
                # Turn about, so that a busy moment of the machine costs each code alike.
                for name, code in runs:
                    samples[name].append(_run(code, config, argv, full_path=full_path))
            for name, _ in runs:
                rows.append(_row(f"`{command}` | {name if compared else '-'}", samples[name]))
                print(rows[-1])
    body = (
        f"Each command run {args.runs} times as a new process, with its bytecode "
        f"compiled, `zone list` listing {args.zones} zones of a SQLite database and "
        "`recordset list` a zone's three recordsets (`recordset update` replaces one "
        "of them, each run a new serial); load average "
        f"{load:.1f} before the run and {os.getloadavg()[0]:.1f} after (the CPU columns "
        "move less with it than the wall ones). Goal: 0.3 s wall. `zone list` and "
        "`zone show` on a SQLite file read their configuration with configparser and "
        "the database with sqlite3 (zoneflow/storage/fastread.py), importing neither "
        "oslo.config nor SQLAlchemy, as `--help` does; wherever that fast path cannot be "
        f"sure to read what oslo.config would ({FULL_PATH} set, a PostgreSQL URL, no "
        "schema yet, ...), they take the full path, whose cost the row with "
        f"{FULL_PATH} shows. The full path imports neither oslo.db nor the ORM models; "
        "what it costs is nearly all the floor, importing oslo.config and SQLAlchemy's "
        "Core with its SQLite dialect, which the last row measures alone.\n\n"
        + "\n".join(rows)
        + "\n"
    )
    report.write_section("cli_startup", "CLI start-up", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
