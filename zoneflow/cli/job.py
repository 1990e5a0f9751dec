"""``zoneflow job``: list jobs, show one (or draw its flow), cancel one, purge old ones."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
import uuid
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.central import jobs as central_jobs
from zoneflow.cli import output
from zoneflow.options import CONF


def list_(args: argparse.Namespace) -> int:
    marker = central_jobs.resolve_id(args.marker) if args.marker else None
    criteria = {
        key: value
        for key, value in (
            ("zone_id" if _is_id(args.zone or "") else "zone_name", args.zone),
            ("state", args.state),
            ("kind", args.kind),
        )
        if value
    }
    if criteria:
        found = _find(criteria, limit=args.limit, marker=marker)
    else:
        found = central_jobs.list_jobs(limit=args.limit, marker=marker)
    output.list_(
        args,
        found if args.json else [_named(job) for job in found],
        ["id", "kind", "zone_name", "serial", "state", "attempts", "updated_at", "error"],
    )
    return 0


def _is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _find(criteria: dict[str, str], *, limit: int, marker: str | None) -> list[Any]:
    """The jobs ``criteria`` pick (a zone's: the batches that carried it too), newest
    first, a page at a time; ``limit`` 0: every one."""
    found: list[Any] = []
    while not limit or len(found) < limit:
        want = _PAGE if not limit else min(_PAGE, limit - len(found))
        page = central_jobs.find_jobs(
            criteria, objects.Paging(want, marker, "created_at", objects.DESC)
        )
        found.extend(job.info for job in page.items)
        if not page.more or not page.items:
            break
        marker = page.items[-1].info.id
    return found


_PAGE = 500


def _named(job: Any) -> Any:
    """A batch's row in the table names its first zone and how many more it carries."""
    if len(job.zones) < 2:
        return job
    return dataclasses.replace(job, zone_name=f"{job.zone_name} +{len(job.zones) - 1}")


def show(args: argparse.Namespace) -> int:
    # A wrong --output is told before the job is looked for: it needs no database.
    fmt = _graph_format(args) if args.graph or args.output else None
    job_id = central_jobs.resolve_id(args.id)
    if fmt is not None:
        _write_graph(args, fmt, central_jobs.job_dot(job_id))
        return 0
    job = central_jobs.job_info(job_id)
    if args.json:
        output.show(args, job)
        return 0
    print(f"job {job.id}: {job.kind} {job.zone_name} serial {job.serial}: {job.state}")
    if len(job.zones) > 1:
        print("zones: " + ", ".join(f"{zone.name} serial {zone.serial}" for zone in job.zones))
    print(
        f"attempts: {job.attempts} ({job.failed_attempts} failed, "
        f"{job.lost_attempts} lost with their conductor)"
    )
    if job.error:
        print(f"error: {job.error}")
    if job.runs:
        rows = [[r.number, r.conductor, r.ended, r.step or r.error or ""] for r in job.runs]
        print(output.table(rows, ["run", "conductor", "ended", "where / why"]))
    print(
        output.table(
            [[a.name, a.state, a.intention] for a in job.atoms], ["atom", "state", "intention"]
        )
    )
    return 0


def cancel(args: argparse.Namespace) -> int:
    job_id = central_jobs.resolve_id(args.id)
    job = central_jobs.cancel(
        job_id,
        who=f"zoneflow-cli-{socket.gethostname()}-{os.getpid()}",
        board_name="zoneflow-cli",
    )
    if args.json:
        output.show(args, job)
    else:
        zones = ", ".join(zone.name for zone in job.zones) or job.zone_name
        print(f"job {job.id} cancelled; zone {zones} is in ERROR: {job.error}")
    return 0


def purge(args: argparse.Namespace) -> int:
    age = CONF.conductor.job_retention if args.older_than is None else args.older_than
    removed = central_jobs.purge(older_than=age)
    if args.json:
        print(json.dumps({"purged": removed}))
    else:
        print(f"purged the logbooks of {removed} ended jobs posted over {age}s ago")
    return 0


def _graph_format(args: argparse.Namespace) -> str:
    """--graph's format, or else the one --output's file name ends in."""
    if args.graph is not None:
        return str(args.graph)
    fmt = str(args.output).rpartition(".")[2].lower()
    if fmt not in output.GRAPH_FORMATS:
        raise exceptions.InvalidInput(
            f"cannot tell the graph format from {args.output!r}: "
            f"add --graph {'|'.join(output.GRAPH_FORMATS)} or end the file name in one of them"
        )
    return fmt


def _write_graph(args: argparse.Namespace, fmt: str, dot: str) -> None:
    """Write a graph in ``fmt`` to --output, or to stdout."""
    # Imported here: drawing loads the flows and TaskFlow's patterns with networkx,
    # 0.4 s of CPU that 'job list' and 'job show' without a graph need not pay.
    from zoneflow.central import drawing

    data = dot.encode() if fmt == "dot" else drawing.image(dot, fmt)
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        return
    try:
        with open(args.output, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise exceptions.InvalidInput(f"cannot write {args.output}: {exc.strerror}") from exc
