"""Reading one job, and a page of jobs, as retained jobs grow to 100,000 (PostgreSQL).

A real PostgreSQL (started as the functional tests start it) and one real
job: a create-zone run by an in-process conductor on a pool of two fake
targets, in a project of its own. Its logbook (its flow and every atom) and
its zone are then copied by PostgreSQL itself
(tests/functional/retained_jobs.py) into ``--jobs`` retained jobs over
``--jobs / 10`` zones in ten projects: the rows conductors would have
written, not that many real runs. VACUUM ANALYZE after each fill, as
autovacuum would in time.

Measured with ``--jobs / 10`` jobs kept, then with ``--jobs``; at each size
with TaskFlow's indexes only (zoneflow's dropped: before) and with
zoneflow's (after), in the same run:

* one job read as a conductor reads it when it claims it (its logbook,
  flow and atoms: ``zoneflow.jobs.get_job``), a job picked at random each time;
* ``GET /v2/jobs/{id}``, by a member of the job's project;
* ``GET /v2/jobs``, the first page (20, newest first), by a member of a
  project a tenth of the jobs belong to;
* ``GET /v2/jobs?marker=``, a page halfway down that project's list;
* ``GET /v2/jobs?zone_id=``, one zone's jobs (a zone's page in the dashboard);
* ``GET /v2/jobs`` by a project with one job among all the others;
* ``GET /v2/jobs?state=FAILURE`` (none) and ``?sort_key=updated_at``: the
  two lists that compute every job's state or last change (doc/api.md),
  sampled ten times less.

The API is zoneflow's real HTTP server (uvicorn) in this process, asked
over one keep-alive connection, one request at a time. The SQL of one
job's read and of a first page, with the indexes, is run again under
``EXPLAIN ANALYZE`` and the plans are written beside the figures.

    python bench/jobs_scale.py [--jobs 100000] [--requests 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import pathlib
import random
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from oslo_config import cfg  # noqa: E402

from bench import report  # noqa: E402
from bench.api_search import Client  # noqa: E402
from tests import support  # noqa: E402
from tests.functional import retained_jobs  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402

POOL = """
- name: default
  ns_records: [{hostname: ns1.bench.example., priority: 1}]
  targets:
    - {type: fake, description: fake1}
    - {type: fake, description: fake2}
"""
PROJECTS = 10
# The template job's zone's project: one job among all the others.
SMALL = "project-small"
START = datetime.datetime(2026, 1, 1)
GOAL_MS = 50
# Without zoneflow's indexes a read is given up after this long (statement_timeout).
TIMEOUT_S = 5


def member(project: str) -> dict[str, str]:
    return {"X-Auth-Project-ID": project, "X-Roles": "member"}


def template_job() -> str:
    """Run one create-zone job to its end with a conductor in this process; its id."""
    from zoneflow import jobs
    from zoneflow.central import changes as central_changes
    from zoneflow.central import zones as central_zones
    from zoneflow.conductor import daemon
    from zoneflow.taskflow_adapter import persistence

    conductor = daemon.Conductor("bench-conductor")
    assert conductor.relay is not None
    central_changes.on_change(conductor.relay.wake)
    conductor.start()
    try:
        central_zones.create_zone(
            "template.bench.example.", "hostmaster@bench.example", project_id=SMALL
        )

        def ended() -> str | None:
            done = [j for j in jobs.list_jobs(persistence.get_backend()) if j.state == "SUCCESS"]
            return done[0].id if done else None

        return support.eventually(ended, 60, what="the template job to succeed")
    finally:
        conductor.stop()
        central_changes._listeners.clear()


@dataclasses.dataclass(frozen=True)
class Figure:
    label: str
    read: Callable[[], None]
    # Reads every job the caller may see by design (doc/api.md): fewer samples,
    # and no goal.
    scans: bool = False


def figures(api_url: str, copies: retained_jobs.Copies) -> list[Figure]:
    """What is timed, in the order of the module's docstring."""
    from zoneflow import jobs
    from zoneflow.taskflow_adapter import persistence

    # A connection of its own: the server closes one left idle while the
    # database was filled or indexed.
    client = Client(api_url)
    backend = persistence.get_backend()
    rng = random.Random(17)
    project = copies.project_of(0)
    # Project 0's jobs: those of zones 0, 10, 20...: every tenth job (zones is a
    # multiple of ten); the page halfway down starts after this one.
    halfway = copies.job_id((copies.jobs // 2) // PROJECTS * PROJECTS)
    zone = copies.zone_id(0)
    per_zone = copies.jobs // copies.zones

    def get(path: str, headers: dict[str, str], expect: int | None = None) -> None:
        _, body = client.get(path, headers)
        if expect is not None and len(body["jobs"]) != expect:
            raise RuntimeError(f"GET {path}: {len(body['jobs'])} jobs, expected {expect}")

    def read_one() -> None:
        jobs.get_job(backend, copies.job_id(rng.randrange(copies.jobs)))

    def show_one() -> None:
        n = rng.randrange(copies.jobs)
        _, body = client.get(
            f"/v2/jobs/{copies.job_id(n)}", member(copies.project_of(copies.zone_of(n)))
        )
        if len(body["atoms"]) < 2:
            raise RuntimeError(f"job {copies.job_id(n)} shown without its atoms: {body}")

    return [
        Figure("one job read as a conductor claims it (jobs.get_job)", read_one),
        Figure("GET /v2/jobs/{id}", show_one),
        Figure("GET /v2/jobs, first page", lambda: get("/v2/jobs", member(project), 20)),
        Figure(
            "GET /v2/jobs?marker=, halfway down",
            lambda: get(f"/v2/jobs?marker={halfway}", member(project), 20),
        ),
        Figure(
            "GET /v2/jobs?zone_id=",
            lambda: get(f"/v2/jobs?zone_id={zone}", member(project), min(20, per_zone)),
        ),
        Figure("GET /v2/jobs, a project with one job", lambda: get("/v2/jobs", member(SMALL), 1)),
        Figure(
            "GET /v2/jobs?state=FAILURE (none)",
            lambda: get("/v2/jobs?state=FAILURE", member(project), 0),
            scans=True,
        ),
        Figure(
            "GET /v2/jobs?sort_key=updated_at",
            lambda: get("/v2/jobs?sort_key=updated_at", member(project), 20),
            scans=True,
        ),
    ]


class NoAnswer(Exception):
    """A read the database gave up on (statement_timeout)."""


def measure(figure: Figure, count: int) -> list[float]:
    """``count`` samples of ``figure``, after one to warm the caches and the pools;
    NoAnswer as soon as one read is given up."""
    samples = []
    for _ in range(count + 1):
        started = time.perf_counter()
        try:
            figure.read()
        except Exception as exc:
            if time.perf_counter() - started < TIMEOUT_S:
                raise
            raise NoAnswer(str(exc)) from exc
        samples.append(time.perf_counter() - started)
    return samples[1:]


def set_indexes(present: bool, *, filling: bool = False) -> None:
    """Add zoneflow's indexes, or drop them and, unless ``filling``, give every
    statement TIMEOUT_S: some lists built for the indexes would take hours without."""
    from zoneflow.storage import db
    from zoneflow.taskflow_adapter import indexes, persistence

    backend = persistence.get_backend()
    with backend.engine.begin() as conn:
        if present:
            indexes.create(conn)
            conn.execute(sa.text("ALTER DATABASE bench RESET statement_timeout"))
        else:
            for index in indexes.INDEXES:
                conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))
            timeout = "0" if filling else f"{TIMEOUT_S}s"
            conn.execute(sa.text(f"ALTER DATABASE bench SET statement_timeout = '{timeout}'"))
    # New connections take the database's setting.
    for engine in (backend.engine, backend.single_statement_engine, db.get_engine()):
        engine.dispose()
    retained_jobs.analyze(backend.engine)


def plans(api_url: str, copies: retained_jobs.Copies) -> list[tuple[str, list[str]]]:
    """The SQL of one conductor's read and one first page, under EXPLAIN ANALYZE."""
    from zoneflow import jobs
    from zoneflow.taskflow_adapter import persistence

    backend = persistence.get_backend()
    with retained_jobs.Statements(backend.engine) as one:
        jobs.get_job(backend, copies.job_id(copies.jobs // 3))
    with retained_jobs.Statements(backend.engine) as page:
        Client(api_url).get("/v2/jobs", member(copies.project_of(0)))
    return [
        ("one job read as a conductor claims it: its logbook, its flow, its atoms", one.plans()),
        (
            "GET /v2/jobs, first page of a project: the count, the page's ids, then the page's "
            "logbooks, flows and atoms",
            page.plans(),
        ),
    ]


@dataclasses.dataclass
class Results:
    """Each figure's samples, by column: (jobs kept, indexes or not)."""

    labels: list[str]
    scans: set[str]
    columns: list[tuple[int, bool]] = dataclasses.field(default_factory=list)
    samples: dict[tuple[str, int, bool], list[float]] = dataclasses.field(default_factory=dict)

    def worst_p99(self, jobs: int) -> float:
        """The worst p99 (ms), with the indexes at ``jobs`` jobs, of the figures that
        should not grow with the jobs kept."""
        return 1000 * max(
            report.percentile(self.samples[(label, jobs, True)], 99)
            for label in self.labels
            if label not in self.scans
        )

    def table(self) -> str:
        heads = [f"{jobs:,} jobs, {_INDEXED[indexed]}" for jobs, indexed in self.columns]
        lines = [
            "| p50 / p99 (ms) | n | " + " | ".join(heads) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in heads) + " |",
        ]
        for label in self.labels:
            cells = []
            for jobs, indexed in self.columns:
                found = self.samples[(label, jobs, indexed)]
                cells.append(
                    f"{report.percentile(found, 50) * 1000:.1f} / "
                    f"{report.percentile(found, 99) * 1000:.1f}"
                    if found
                    else f"no answer in {TIMEOUT_S} s"
                )
            count = max(len(self.samples[(label, *column)]) for column in self.columns)
            shown = f"{label} (reads every job)" if label in self.scans else label
            lines.append(f"| {shown} | {count} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


_INDEXED = {False: "TaskFlow's indexes", True: "zoneflow's indexes"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="retained jobs at the end")
    parser.add_argument("--requests", type=int, default=100, help="samples per figure")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.jobs % (10 * PROJECTS * 10):
        parser.error(f"--jobs must be a multiple of {10 * PROJECTS * 10}")

    from zoneflow.api import server
    from zoneflow.taskflow_adapter import persistence

    load_before = os.getloadavg()
    sizes = (args.jobs // 10, args.jobs)
    fills: list[float] = []
    with PostgresServer(settings={"shared_buffers": "256MB"}) as postgres:
        url = postgres.create_database("bench")
        with support.database(url, pools_yaml=POOL):
            persistence.upgrade()
            template = template_job()
            cfg.CONF.set_override("access_log", False, group="api")
            api = server.ApiServer("127.0.0.1", 0)
            api.start()
            try:
                results: Results | None = None
                made = 0
                for size in sizes:
                    print(f"copying the template job up to {size:,} jobs ...", file=sys.stderr)
                    started = time.perf_counter()
                    set_indexes(False, filling=True)  # a fill is quicker without
                    copies = copy_more(template, made, size, zones=args.jobs // 10)
                    fills.append(time.perf_counter() - started)
                    made = size
                    timed = figures(api.url, copies)
                    if results is None:
                        results = Results(
                            [f.label for f in timed], {f.label for f in timed if f.scans}
                        )
                    for indexed in (False, True):
                        set_indexes(indexed)
                        results.columns.append((size, indexed))
                        for figure in timed:
                            count = max(5, args.requests // 10) if figure.scans else args.requests
                            try:
                                found = measure(figure, count)
                            except NoAnswer:
                                found = []
                            results.samples[(figure.label, size, indexed)] = found
                        print(results.table(), file=sys.stderr)
                explained = plans(api.url, copies)
            finally:
                api.stop()
    assert results is not None
    uses_index = "ix_atomdetails_parent_uuid" in "".join(
        explained[0][1]
    ) and "ix_logbooks_created_at" in "".join(explained[1][1])
    text = describe(args, sizes, fills, results, explained, load_before, os.getloadavg())
    print(text)
    if not uses_index:
        print("one job's read or the first page did not use its index", file=sys.stderr)
    if not args.no_write:
        report.write_section("jobs_scale", "Reading jobs as retained jobs grow", text)
    return 0 if uses_index and results.worst_p99(args.jobs) <= GOAL_MS else 1


def copy_more(template: str, made: int, size: int, zones: int) -> retained_jobs.Copies:
    """Copies of the template numbered ``made`` to ``size - 1`` (the ones below exist)."""
    from zoneflow.taskflow_adapter import persistence

    engine = persistence.get_backend().engine
    copies = retained_jobs.copy_jobs(
        engine, template, jobs=size, zones=zones, projects=PROJECTS, start=START, first=made
    )
    retained_jobs.analyze(engine)
    return copies


def describe(
    args: argparse.Namespace,
    sizes: tuple[int, int],
    fills: list[float],
    results: Results,
    explained: list[tuple[str, list[str]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    worst = results.worst_p99(args.jobs)
    verdict = "met" if worst <= GOAL_MS else "NOT met"
    lines = [
        f"`python bench/jobs_scale.py --jobs {args.jobs} --requests {args.requests}`: one "
        "create-zone job run for real (two fake targets), its logbook (flow and atoms) "
        f"copied by PostgreSQL into {sizes[0]:,} then {sizes[1]:,} retained jobs (in "
        f"{fills[0]:.0f} s and {fills[1]:.0f} s, then VACUUM ANALYZE), over "
        f"{args.jobs // 10:,} zones in ten projects. At each size, in the same run: "
        "TaskFlow's tables with TaskFlow's indexes only (zoneflow's dropped, and every "
        f"statement given up after {TIMEOUT_S} s: a project's count, zone by zone through "
        "the zone_id index, would take hours without it), then with zoneflow's (migration "
        "0014_logbook_indexes); the code is the paged one in both (the list before it read "
        "every job whole at each request, and is not measured here). PostgreSQL with "
        "shared_buffers = "
        "256MB, fsync off (the test fixture); the API is zoneflow's real HTTP server in the "
        "benchmark's process, asked by a member of the project (a tenth of the jobs are "
        "its own) over one keep-alive connection, one request at a time; a job read or "
        f"shown is picked at random each time. n: samples per figure. Load average "
        f"(1, 5, 15 min) {_load(load_before)} at the start and {_load(load_after)} at the "
        "end: the machine was busy beside the benchmark, figures are noisy.",
        "",
        results.table(),
        "The two lists marked as reading every job compute each job's state or last "
        "change in SQL (doc/api.md): they grow with the jobs kept, indexes or not.",
        "",
        f"Goal: with zoneflow's indexes at {args.jobs:,} jobs, the reads that should not "
        f"grow with the jobs kept at most {GOAL_MS} ms p99: **{verdict}** (worst "
        f"{worst:.1f} ms).",
        "",
        f"The SQL of two reads, with zoneflow's indexes at {args.jobs:,} jobs, run again "
        "under `EXPLAIN (ANALYZE, COSTS OFF)`:",
        "",
    ]
    for title, found in explained:
        lines += [f"{title}:", ""]
        for plan in found:
            lines += ["```", plan, "```", ""]
    return "\n".join(lines)


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in load)


if __name__ == "__main__":
    sys.exit(main())
