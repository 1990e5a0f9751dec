"""The ``zoneflow`` command.

Changes go through :mod:`zoneflow.central`, as the REST API's do. Some reads
do not yet: pool list and show, zone status, waiting for a job, and the job
and flow commands read storage and the job records directly (issue 14 puts
them behind central). Errors are one line on stderr and a non-zero exit
status; a traceback only with ``--debug``.

Each command imports what it needs when it runs: ``zoneflow --help`` imports
neither oslo.config nor SQLAlchemy, and ``zoneflow zone list`` no TaskFlow;
the commands that only read (READ_COMMANDS), on a local SQLite database,
neither oslo.config nor SQLAlchemy (see _read).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zoneflow import exceptions

if TYPE_CHECKING:  # imported by the commands that use it: --help does without
    from zoneflow import objects

EXIT_ERROR = 1
EXIT_INTERNAL = 2
# What a shell reports for a command killed by SIGPIPE: `zoneflow job list | head`.
EXIT_BROKEN_PIPE = 128 + 13

# A wait on a terminal shows the job's steps once it has lasted this long.
PROGRESS_AFTER = 2.0

# The command to run next, added to an error; storage's messages name no command,
# since the API reaches them too.
_HINTS: dict[type[exceptions.ZoneflowError], str] = {
    exceptions.ZoneNotFound: "'zoneflow zone list' shows the zones there are",
    exceptions.RecordSetNotFound: "'zoneflow recordset list ZONE' shows the ones there are",
    exceptions.JobNotFound: "'zoneflow job list' shows the jobs there are",
}


# --- output ------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _show(args: argparse.Namespace, value: Any) -> None:
    plain = _plain(value)
    if args.json:
        print(json.dumps(plain, indent=2, sort_keys=True))
        return
    width = max(len(k) for k in plain)
    for key, item in plain.items():
        if isinstance(item, list):
            item = ", ".join(str(i) for i in item)
        print(f"{key.ljust(width)}  {'' if item is None else item}")


def _list(args: argparse.Namespace, items: Sequence[Any], headers: Sequence[str]) -> None:
    if args.json:
        print(json.dumps([_plain(i) for i in items], indent=2, sort_keys=True))
        return
    rows = []
    for item in items:
        plain = _plain(item)
        rows.append(
            [
                ", ".join(map(str, v)) if isinstance(v, list) else v
                for v in (plain[h] for h in headers)
            ]
        )
    print(_table(rows, headers))


# --- posting jobs --------------------------------------------------------------


class _JobPoster:
    """Posts the jobs a command's changes wrote to the outbox.

    With ZooKeeper the board is checked before anything changes, so an
    unreachable board costs the user nothing; with the in-process zake board
    there is nothing to post to from here, and the running ``zoneflow
    all-in-one`` picks the jobs up from the outbox.
    """

    def __init__(self) -> None:
        from zoneflow.options import CONF
        from zoneflow.taskflow_adapter import jobboard, persistence

        self.board = None
        self.persistence = None
        if CONF.jobboard.backend == "zookeeper":
            self.persistence = persistence.get_backend()
            self.board = jobboard.connect(self.persistence, name="zoneflow-cli")

    def post(self) -> None:
        if self.board is None:
            return
        from zoneflow.engine.relay import OutboxRelay

        try:
            OutboxRelay(self.board, self.persistence).flush()
        except exceptions.ZoneflowError as exc:
            # The change and its job are saved together; only posting failed,
            # and any conductor's relay will post the job from the outbox.
            print(
                f"zoneflow: warning: the change is saved but its job could not be posted yet "
                f"({exc}); a running conductor will post it",
                file=sys.stderr,
            )
        finally:
            self.board.close()


def _change(make_change: Callable[[], Any]) -> Any:
    """Make one change and post its job (the board is checked first, see _JobPoster)."""
    poster = _JobPoster()
    result = make_change()
    poster.post()
    return result


def _wait(args: argparse.Namespace, zone_id: str) -> objects.Zone:
    """Wait until the zone's job has finished (the zone leaves PENDING).

    With --progress, each step of the job is printed on stderr as it finishes;
    on a terminal, so are they once the wait has lasted PROGRESS_AFTER seconds,
    so that a slow change shows what it is waiting for.
    """
    from zoneflow import objects
    from zoneflow.storage import api as storage

    started = time.monotonic()
    deadline = started + args.wait_timeout
    progress = _progress(zone_id, started) if args.progress else None
    on_terminal = _on_terminal()
    while True:
        zone = storage.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} is gone")
        if progress is None and on_terminal and time.monotonic() - started >= PROGRESS_AFTER:
            progress = _progress(zone_id, started)
        if progress is not None:
            progress.follow(zone.name, zone.serial, _say)
        if zone.status != objects.Status.PENDING:
            if progress is not None:
                _follow_to_the_end(progress, zone)
            return zone
        if time.monotonic() > deadline:
            raise exceptions.ZoneflowError(
                f"zone {zone.name} is still PENDING after {args.wait_timeout:g}s: is a conductor "
                "running? ('zoneflow conductor', or 'zoneflow all-in-one')"
            )
        time.sleep(0.05)


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _progress(zone_id: str, started: float) -> Any:
    """A follower of the zone's job, whose lines count the time from ``started``."""
    from zoneflow.engine import progress
    from zoneflow.storage import api as storage
    from zoneflow.taskflow_adapter import persistence

    zone = storage.get_zone_any(zone_id)
    pool = storage.get_pool(zone.pool_id) if zone is not None else None
    labels = {t.id: t.label for t in pool.targets} if pool is not None else {}
    follower = progress.Progress(persistence.get_backend(), labels=labels)
    follower.started = started
    return follower


def _follow_to_the_end(progress: Any, zone: objects.Zone, grace: float = 2.0) -> None:
    """The zone's status is the job's last step: print the steps still landing."""
    from zoneflow import jobs

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        state = progress.follow(zone.name, zone.serial, _say)
        if state is None or state in jobs.OVER:
            return
        time.sleep(0.05)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _failed(zone: objects.Zone) -> int:
    """Say on stderr why the zone's job failed and how to see more; the exit status."""
    from zoneflow import jobs
    from zoneflow.engine import progress
    from zoneflow.taskflow_adapter import persistence

    backend = persistence.get_backend()
    job_id = jobs.find_job(backend, progress.job_names(zone.name, zone.serial))
    reason = zone.error
    if reason is None and job_id is not None:
        reason = jobs.get_job(backend, job_id).error
    more = (
        f"'zoneflow job show {job_id}' shows each step"
        if job_id is not None
        else f"'zoneflow zone status {zone.name}' shows each target"
    )
    print(
        f"zoneflow: error: zone {zone.name} is in ERROR: {reason or 'no reason recorded'}; {more}",
        file=sys.stderr,
    )
    return EXIT_ERROR


def _finish_zone_change(args: argparse.Namespace, zone: objects.Zone) -> int:
    from zoneflow import objects

    if args.wait:
        zone = _wait(args, zone.id)
    _show(args, zone)
    if args.wait and zone.status == objects.Status.ERROR:
        return _failed(zone)
    return 0


# --- projects ----------------------------------------------------------------------


def _project(args: argparse.Namespace) -> str | None:
    """The project the command acts for: --project, else $ZONEFLOW_PROJECT, else none
    (the operator's own zones, which only an all-projects API call shows)."""
    return args.project or os.environ.get("ZONEFLOW_PROJECT") or None


def _scope(args: argparse.Namespace) -> str | None:
    """The project whose zones the command sees (None: every project's), as in the API."""
    return None if args.all_projects else _project(args)


# --- commands ----------------------------------------------------------------------


def cmd_db_sync(args: argparse.Namespace) -> int:
    from zoneflow.storage import migration
    from zoneflow.taskflow_adapter import persistence

    migration.upgrade()
    persistence.upgrade()
    print("database is up to date")
    return 0


def _zones(count: int) -> str:
    return f"{count} zone" if count == 1 else f"{count} zones"


def _pool_update_summary(update: objects.PoolUpdate) -> str:
    """One line per pool: its size now, and the work the update scheduled."""
    pool = update.pool
    parts = [
        f"pool {pool.name}: {len(pool.targets)} target(s), {len(pool.nameservers)} nameserver(s)"
    ]
    added = [f"target {t.label}" for t in update.added_targets]
    added += [f"nameserver {n}" for n in update.added_nameservers]
    if added:
        parts.append(f"{', '.join(added)} added, {_zones(update.backfill)} to backfill")
    for target in update.retired_targets:
        parts.append(
            f"target {target.label} retired, {_zones(update.to_delete[target.id])} to delete "
            "from it"
        )
    for target in update.draining_targets:
        parts.append(
            f"target {target.label} still retired, {_zones(update.to_delete[target.id])} to "
            "delete from it (drain posted again)"
        )
    for target in update.removed_targets:
        parts.append(
            f"target {target.label} removed; catalog provisioning makes no per-zone call, so it "
            f"serves the pool's zones until its own configuration drops {pool.catalog_zone}"
        )
    return "; ".join(parts)


def cmd_pool_update(args: argparse.Namespace) -> int:
    from zoneflow.central import pools

    for update in pools.update(args.file):
        print(_pool_update_summary(update))
    return 0


def cmd_pool_list(args: argparse.Namespace) -> int:
    from zoneflow.storage import api as storage

    pools = storage.list_pools()
    if args.json:
        _list(args, pools, [])
        return 0
    print(
        _table(
            [[p.name, p.id, len(p.targets), p.threshold_percentage] for p in pools],
            ["name", "id", "targets", "threshold_percentage"],
        )
    )
    return 0


def _masked(options: dict[str, Any]) -> dict[str, Any]:
    """Target options with secrets (an API key, a password) replaced by ``***``."""
    return {
        name: "***" if name.endswith(("api_key", "password", "secret")) else value
        for name, value in options.items()
    }


def cmd_pool_show(args: argparse.Namespace) -> int:
    from zoneflow.storage import api as storage

    pool = storage.get_pool(args.name)
    # Zones each retired target still has to have deleted from it.
    left = {t.id: storage.count_zones_to_drain(t.id) for t in pool.retired_targets}
    if args.json:
        shown = _plain(pool)
        for target in shown["targets"] + shown["retired_targets"]:
            target["options"] = _masked(target["options"])
        for target in shown["retired_targets"]:
            target["zones_to_delete"] = left[target["id"]]
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    print(f"pool {pool.name} ({pool.id}), threshold {pool.threshold_percentage}%")
    if pool.catalog_zone:
        print(
            f"catalog:     {pool.catalog_zone} (refresh {pool.catalog_zone_refresh}s), "
            f"provisioning {pool.provisioning}"
        )
    print("ns_records:  " + ", ".join(f"{r.hostname} ({r.priority})" for r in pool.ns_records))
    print("nameservers: " + ", ".join(str(n) for n in pool.nameservers))
    if pool.also_notifies:
        print("also_notifies: " + ", ".join(str(n) for n in pool.also_notifies))
    print(
        _table(
            [[t.id, t.type, t.label, ", ".join(str(m) for m in t.masters)] for t in pool.targets],
            ["target", "type", "description", "masters"],
        )
    )
    if pool.retired_targets:
        print("retired targets, the pool's zones being deleted from them:")
        print(
            _table(
                [
                    [t.id, t.type, t.label, _plain(t.retired_at), left[t.id], t.drain_error or ""]
                    for t in pool.retired_targets
                ],
                ["target", "type", "description", "retired", "zones left", "last error"],
            )
        )
    return 0


def cmd_zone_create(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central
    from zoneflow.dns import validation

    validation.absolute_zone_name(args.name)  # the API's rule (Designate's) here too
    zone = _change(
        lambda: central.create_zone(
            args.name,
            args.email,
            ttl=args.ttl,
            pool=args.pool,
            description=args.description,
            project_id=_project(args),
        ),
    )
    return _finish_zone_change(args, zone)


def cmd_zone_update(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central

    zone = _change(
        lambda: central.update_zone(
            args.name,
            email=args.email,
            ttl=args.ttl,
            description=args.description,
            project_id=_scope(args),
        ),
    )
    return _finish_zone_change(args, zone)


def cmd_zone_delete(args: argparse.Namespace) -> int:
    from zoneflow import objects
    from zoneflow.central import api as central
    from zoneflow.storage import api as storage

    zone = _change(lambda: central.delete_zone(args.name, project_id=_scope(args)))
    if args.wait:
        finished = _wait(args, zone.id)
        if finished.status == objects.Status.ERROR:
            _show(args, finished)
            return _failed(finished)
        zone = storage.get_zone_any(zone.id) or zone
    _show(args, zone)
    return 0


def cmd_zone_recover(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central

    zone = _change(lambda: central.recover_zone(args.name, project_id=_scope(args)))
    # Waiting ends at ACTIVE, ERROR, or DELETED for a zone whose delete was recovered.
    return _finish_zone_change(args, zone)


def cmd_zone_list(args: argparse.Namespace) -> int:
    scope = _scope(args)
    columns = ["name", "id", "serial", "status", "action"]
    if scope is None:
        columns.append("project_id")  # zones of every project: say whose each is
    _list(args, args.reads.list_zones(project_id=scope), columns)
    return 0


def cmd_zone_show(args: argparse.Namespace) -> int:
    _show(args, args.reads.get_zone(args.name, project_id=_scope(args)))
    return 0


def cmd_zone_status(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central
    from zoneflow.storage import api as storage

    zone = central.get_zone(args.name, project_id=_scope(args))
    pool = storage.get_pool(zone.pool_id)
    labels = {t.id: t.label for t in pool.targets}
    labels.update({t.id: f"{t.label} (retired)" for t in pool.retired_targets})
    rows = central.zone_status(args.name, project_id=_scope(args))
    if args.json:
        _list(args, rows, [])
        return 0
    print(
        f"{zone.name} serial {zone.serial}: {zone.status}/{zone.action}"
        + (f" ({zone.error})" if zone.error else "")
    )
    print(
        _table(
            [
                [
                    labels.get(r.target_id, r.target_id),
                    r.serial,
                    r.status,
                    r.error or "",
                    _plain(r.updated_at),
                ]
                for r in rows
            ],
            ["target", "serial", "status", "last error", "updated"],
        )
    )
    return 0


def cmd_recordset_create(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central
    from zoneflow.dns import validation

    # The API's rule (Designate's) here too: names are given absolute.
    zone = central.get_zone(args.zone)
    validation.absolute_recordset_name(args.name, zone.name)
    validation.absolute_record_names(args.type, args.record, zone=zone.name)
    recordset = _change(
        lambda: central.create_recordset(
            args.zone, args.name, args.type, args.record, ttl=args.ttl, project_id=_scope(args)
        ),
    )
    return _finish_recordset_change(args, recordset)


def cmd_recordset_update(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central

    if args.record is None and args.ttl is None:
        raise exceptions.InvalidInput("nothing to change: give --record and/or --ttl")
    if args.record is not None:
        from zoneflow.dns import validation

        zone = central.get_zone(args.zone)
        current = central.get_recordset(zone.id, args.name, rtype=args.type)
        validation.absolute_record_names(current.type, args.record, zone=zone.name)
    recordset = _change(
        lambda: central.update_recordset(
            args.zone,
            args.name,
            rtype=args.type,
            records=args.record,
            ttl=args.ttl,
            project_id=_scope(args),
        ),
    )
    return _finish_recordset_change(args, recordset)


def cmd_recordset_delete(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central

    recordset = _change(
        lambda: central.delete_recordset(
            args.zone, args.name, rtype=args.type, project_id=_scope(args)
        )
    )
    return _finish_recordset_change(args, recordset, deleted=True)


def _finish_recordset_change(
    args: argparse.Namespace, recordset: objects.RecordSet, *, deleted: bool = False
) -> int:
    """Show the recordset as the nameservers now serve it; once a delete has been
    waited for, say that it is gone (storage no longer has it to show)."""
    if args.wait:
        from zoneflow import objects
        from zoneflow.storage import api as storage

        zone = _wait(args, recordset.zone_id)
        if zone.status == objects.Status.ERROR:
            _show(args, zone)
            return _failed(zone)
        if deleted:
            gone = dataclasses.replace(
                recordset, status=objects.Status.DELETED, action=objects.Action.NONE
            )
            if args.json:
                _show(args, gone)
            else:
                print(
                    f"{objects.with_article(gone.type)} recordset {gone.name} was deleted: "
                    f"the nameservers of {zone.name} no longer serve it"
                )
            return 0
        recordset = storage.get_recordset(recordset.zone_id, recordset.id)
    _show(args, recordset)
    return 0


def cmd_recordset_list(args: argparse.Namespace) -> int:
    # Through central.api: the zone's SOA and apex NS are listed too, built
    # from its pool with dnspython as mdns serves them.
    from zoneflow.central import api as central

    _list(
        args,
        central.list_recordsets(args.zone, project_id=_scope(args)),
        ["name", "type", "ttl", "records", "status"],
    )
    return 0


def cmd_recordset_show(args: argparse.Namespace) -> int:
    from zoneflow.central import api as central

    _show(
        args, central.get_recordset(args.zone, args.name, rtype=args.type, project_id=_scope(args))
    )
    return 0


def cmd_job_list(args: argparse.Namespace) -> int:
    from zoneflow import jobs
    from zoneflow.taskflow_adapter import persistence

    _list(
        args,
        jobs.list_jobs(persistence.get_backend(), limit=args.limit),
        ["id", "kind", "zone_name", "serial", "state", "attempts", "updated_at", "error"],
    )
    return 0


def cmd_job_show(args: argparse.Namespace) -> int:
    from zoneflow import jobs
    from zoneflow.flows import job_graph
    from zoneflow.taskflow_adapter import persistence

    # A wrong --output is told before the job is looked for: it needs no database.
    fmt = _graph_format(args) if args.graph or args.output else None
    backend = persistence.get_backend()
    job_id = jobs.resolve_id(backend, args.id)
    if fmt is not None:
        _write_graph(args, fmt, job_graph.to_dot(backend, job_id))
        return 0
    job = jobs.get_job(backend, job_id)
    if args.json:
        _show(args, job)
        return 0
    print(f"job {job.id}: {job.kind} {job.zone_name} serial {job.serial}: {job.state}")
    print(f"attempts: {job.attempts}")
    if job.error:
        print(f"error: {job.error}")
    print(
        _table([[a.name, a.state, a.intention] for a in job.atoms], ["atom", "state", "intention"])
    )
    return 0


def cmd_job_cancel(args: argparse.Namespace) -> int:
    import socket

    from zoneflow import jobs
    from zoneflow.taskflow_adapter import jobboard, persistence

    backend = persistence.get_backend()
    job_id = jobs.resolve_id(backend, args.id)
    board = jobboard.connect(backend, name="zoneflow-cli")
    try:
        job = jobs.cancel(
            board, backend, job_id, who=f"zoneflow-cli-{socket.gethostname()}-{os.getpid()}"
        )
    finally:
        board.close()
    if args.json:
        _show(args, job)
    else:
        print(f"job {job.id} cancelled; zone {job.zone_name} is in ERROR: {job.error}")
    return 0


def _seconds(text: str) -> int:
    """A whole number of seconds, zero or more, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def cmd_job_purge(args: argparse.Namespace) -> int:
    import datetime

    from zoneflow import jobs
    from zoneflow.options import CONF
    from zoneflow.taskflow_adapter import persistence

    age = CONF.conductor.job_retention if args.older_than is None else args.older_than
    removed = jobs.purge(persistence.get_backend(), older_than=datetime.timedelta(seconds=age))
    if args.json:
        print(json.dumps({"purged": removed}))
    else:
        print(f"purged the logbooks of {removed} ended jobs posted over {age}s ago")
    return 0


GRAPH_FORMATS = ("dot", "svg", "png")


def _graph_format(args: argparse.Namespace) -> str:
    """--graph's format, or else the one --output's file name ends in."""
    if args.graph is not None:
        return str(args.graph)
    fmt = str(args.output).rpartition(".")[2].lower()
    if fmt not in GRAPH_FORMATS:
        raise exceptions.InvalidInput(
            f"cannot tell the graph format from {args.output!r}: "
            f"add --graph {'|'.join(GRAPH_FORMATS)} or end the file name in one of them"
        )
    return fmt


def _write_graph(args: argparse.Namespace, fmt: str, dot: str) -> None:
    """Write a graph in ``fmt`` to --output, or to stdout."""
    from zoneflow.flows import render

    data = dot.encode() if fmt == "dot" else render.to_image(dot, fmt)
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        return
    try:
        with open(args.output, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise exceptions.InvalidInput(f"cannot write {args.output}: {exc.strerror}") from exc


def cmd_flow_show(args: argparse.Namespace) -> int:
    from zoneflow import flows
    from zoneflow.flows import render
    from zoneflow.flows import retire_target as target_flows
    from zoneflow.storage import api as storage

    kinds = sorted([*flows.FACTORIES, *target_flows.FACTORIES])
    if args.kind not in kinds:
        raise exceptions.FlowNotFound(
            f"there is no flow {args.kind!r}: choose one of {', '.join(kinds)}"
        )
    if args.kind not in flows.FACTORIES:
        pool_args = {}  # a target's flow is the same for every pool
    elif args.pool is None:
        # Drawing needs no database: a newcomer may look before `db sync`.
        pool_args = _example_pool_args()
    else:
        pool_args = flows.pool_args(storage.get_pool(args.pool))
    dot = render.to_dot(flow_of(args.kind, pool_args))
    if args.format == "dot":
        sys.stdout.write(dot)
    else:
        sys.stdout.buffer.write(render.to_image(dot, args.format))
    return 0


def flow_of(kind: str, pool_args: dict[str, Any]) -> Any:
    """The flow of a zone job (drawn for a pool) or of a target job (no pool needed)."""
    from zoneflow import flows, objects
    from zoneflow.flows import retire_target as target_flows

    job = objects.JobKind(kind)
    if job in flows.FACTORIES:
        return flows.FACTORIES[job](**pool_args)
    return target_flows.FACTORIES[job]()


def _example_pool_args() -> dict[str, Any]:
    """A two-server pool to draw flows with before any pool is loaded."""
    return {
        "targets": [
            {"id": f"bind9-{i}", "label": f"bind9-{i}", "host": f"192.0.2.{i}", "port": 53}
            for i in (1, 2)
        ],
        "nameservers": [[f"192.0.2.{i}", 53] for i in (1, 2)],
        "also_notifies": [],
        "threshold": 100,
    }


def cmd_targets_up(args: argparse.Namespace) -> int:
    from zoneflow.local import targets
    from zoneflow.options import CONF

    if CONF.mdns.port == 0:
        raise exceptions.InvalidConfig(
            "[mdns] port is 0 (any free port), so the targets cannot know where to transfer "
            "zones from: set a fixed port in zoneflow.conf"
        )
    directory = pathlib.Path(args.dir).resolve()
    # The servers run here: an mdns listening on every address is reached on loopback.
    mdns_host = "127.0.0.1" if CONF.mdns.host in ("0.0.0.0", "::") else CONF.mdns.host
    masters = [(mdns_host, CONF.mdns.port)]
    with targets.stopped_by_signals():
        servers = targets.start(args.kind, args.count, directory)
        try:
            pools_file = targets.write_pools(
                directory / "pools.yaml",
                [targets.pool(args.kind, servers, masters, name=args.pool)],
            )
            for server in servers:
                print(f"{server.workdir.name}  {server.host}:{server.port}  in {server.workdir}")
            print(
                f"pool {args.pool!r} written to {pools_file}, its targets fed by mdns at "
                f"{mdns_host}:{CONF.mdns.port}; load it with:\n"
                f"  zoneflow pool update --file {pools_file}\n"
                "serving until Ctrl-C (or SIGTERM, SIGHUP)",
                flush=True,
            )
            targets.wait_for_stop()
        finally:
            targets.stop(servers)
    print("stopped every server")
    return 0


def cmd_conductor(args: argparse.Namespace) -> int:
    from zoneflow.conductor import daemon

    daemon.run_forever()
    return 0


def cmd_mdns(args: argparse.Namespace) -> int:
    from zoneflow.mdns import server

    server.run()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from zoneflow.api import server

    server.run_forever()
    return 0


def cmd_all_in_one(args: argparse.Namespace) -> int:
    from zoneflow import allinone

    allinone.run_forever()
    return 0


# --- the parser ----------------------------------------------------------------------


def _global_options(*, after_command: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name.

    After it, their defaults are left out (SUPPRESS), so that a command's
    parser does not reset what was given before the command; --config-file
    given in both places lands in two lists that main() joins.
    """
    options = argparse.ArgumentParser(add_help=False)
    unset = argparse.SUPPRESS if after_command else None
    options.add_argument(
        "--config-file",
        action="append",
        metavar="PATH",
        dest="config_file_after" if after_command else "config_file",
        default=unset,
        help="zoneflow.conf to read (repeatable; default ./zoneflow.conf, "
        "/etc/zoneflow/zoneflow.conf or $ZONEFLOW_CONFIG)",
    )
    flag = argparse.SUPPRESS if after_command else False
    options.add_argument(
        "--debug", action="store_true", default=flag, help="verbose logs and tracebacks"
    )
    options.add_argument(
        "--json", action="store_true", default=flag, help="print JSON instead of tables"
    )
    options.add_argument(
        "--project",
        metavar="PROJECT_ID",
        default=unset,
        help="act for this project, as the API does for its callers: its zones only, and "
        "new zones are its own (default: $ZONEFLOW_PROJECT; without either, new zones "
        "belong to no project and every project's zones are seen)",
    )
    options.add_argument(
        "--all-projects",
        action="store_true",
        default=flag,
        help="see and change the zones of every project, not only --project's",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoneflow",
        description=__doc__.splitlines()[0],
        parents=[_global_options(after_command=False)],
    )
    after = _global_options(after_command=True)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(
        sub: Any,
        name: str,
        func: Callable[[argparse.Namespace], int],
        help: str,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help, description=help, parents=[after]
        )
        p.set_defaults(func=func)
        return p

    def waitable(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--wait",
            action="store_true",
            help="wait until the nameservers serve the change (or it fails)",
        )
        p.add_argument("--wait-timeout", type=float, default=120.0, metavar="SECONDS")
        p.add_argument(
            "--progress",
            action="store_true",
            help="wait (as --wait) and print each step of the job on stderr as it finishes",
        )

    db = groups.add_parser("db", help="database schema").add_subparsers(dest="cmd", required=True)
    command(db, "sync", cmd_db_sync, "create or upgrade the database schema")

    pool = groups.add_parser("pool", help="pools of nameservers").add_subparsers(
        dest="cmd", required=True
    )
    p = command(pool, "update", cmd_pool_update, "load pools from a Designate-style pools.yaml")
    p.add_argument("--file", required=True, metavar="POOLS_YAML")
    command(pool, "list", cmd_pool_list, "list pools")
    p = command(pool, "show", cmd_pool_show, "show a pool's targets and nameservers")
    p.add_argument("name", nargs="?", default="default")

    zone = groups.add_parser("zone", help="zones").add_subparsers(dest="cmd", required=True)
    p = command(zone, "create", cmd_zone_create, "create a zone")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--ttl")
    p.add_argument("--pool")
    p.add_argument("--description")
    waitable(p)
    p = command(zone, "update", cmd_zone_update, "change a zone's email, TTL or description")
    p.add_argument("name")
    p.add_argument("--email")
    p.add_argument("--ttl")
    p.add_argument("--description")
    waitable(p)
    p = command(zone, "delete", cmd_zone_delete, "delete a zone from every nameserver")
    p.add_argument("name")
    waitable(p)
    p = command(
        zone,
        "recover",
        cmd_zone_recover,
        "bring every target to the zone's stored state (after ERROR, or a target left "
        "behind); only targets that lack it are touched",
    )
    p.add_argument("name")
    waitable(p)
    command(zone, "list", cmd_zone_list, "list zones")
    p = command(zone, "show", cmd_zone_show, "show a zone")
    p.add_argument("name")
    p = command(zone, "status", cmd_zone_status, "what each target serves of a zone")
    p.add_argument("name")

    rs = groups.add_parser("recordset", help="recordsets").add_subparsers(dest="cmd", required=True)
    p = command(rs, "create", cmd_recordset_create, "create a recordset")
    p.add_argument("zone")
    p.add_argument("name", help="absolute, with its trailing dot: www.example.com.")
    p.add_argument("type")
    p.add_argument(
        "--record",
        action="append",
        required=True,
        metavar="DATA",
        help="record data in zone-file syntax (repeatable)",
    )
    p.add_argument("--ttl")
    waitable(p)
    p = command(rs, "update", cmd_recordset_update, "replace a recordset's records or TTL")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")
    p.add_argument("--record", action="append", metavar="DATA")
    p.add_argument("--ttl")
    waitable(p)
    p = command(rs, "delete", cmd_recordset_delete, "delete a recordset")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")
    waitable(p)
    p = command(rs, "list", cmd_recordset_list, "list a zone's recordsets")
    p.add_argument("zone")
    p = command(rs, "show", cmd_recordset_show, "show a recordset")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")

    job = groups.add_parser("job", help="jobs").add_subparsers(dest="cmd", required=True)
    p = command(job, "list", cmd_job_list, "list jobs, newest first")
    p.add_argument("--limit", type=int, default=50)
    p = command(job, "show", cmd_job_show, "show a job and the state of each of its tasks")
    p.add_argument("id")
    p.add_argument(
        "--graph",
        choices=GRAPH_FORMATS,
        help="draw the job's flow instead, each task coloured by its state",
    )
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the graph to FILE (format from --graph or FILE's suffix), not stdout",
    )
    p = command(job, "cancel", cmd_job_cancel, "take a job no conductor is running off the board")
    p.add_argument("id")
    p = command(job, "purge", cmd_job_purge, "delete the logbooks of long-ended jobs now")
    p.add_argument(
        "--older-than",
        type=_seconds,
        metavar="SECONDS",
        help="age of the jobs to purge (default: [conductor] job_retention)",
    )

    flow = groups.add_parser("flow", help="flows").add_subparsers(dest="cmd", required=True)
    p = command(flow, "show", cmd_flow_show, "draw a flow's graph")
    p.add_argument(
        "kind", help="create-zone, update-zone, delete-zone, recover-zone or retire-target"
    )
    p.add_argument("--format", choices=["dot", "svg", "png"], default="dot")
    p.add_argument(
        "--pool",
        metavar="NAME",
        help="draw it for this pool's targets (read from the database); "
        "default: an example pool of two BIND9 targets",
    )

    targets = groups.add_parser("targets", help="nameservers on this machine").add_subparsers(
        dest="cmd", required=True
    )
    p = command(
        targets,
        "up",
        cmd_targets_up,
        "run local nameservers as a pool: write DIR/pools.yaml for them (fed by [mdns] host "
        "and port) and serve until Ctrl-C, SIGTERM or SIGHUP, then stop them all",
    )
    p.add_argument("--kind", default="bind9", help="bind9 (named) or knot (knotd)")
    p.add_argument("--count", type=int, default=2, help="how many servers (default 2)")
    p.add_argument("--dir", default="targets", help="where they live (default ./targets)")
    p.add_argument("--pool", default="default", help="the pool's name in pools.yaml")

    for name, func, text in (
        ("conductor", cmd_conductor, "run a conductor: claim jobs and run their flows"),
        ("mdns", cmd_mdns, "run the mini-DNS nameservers transfer zones from"),
        ("api", cmd_api, "serve the REST API (Designate's v2) on [api] host:port"),
        ("all-in-one", cmd_all_in_one, "run conductor, mdns, relay and the API in one process"),
    ):
        command(groups, name, func, text)
    return parser


def _message(exc: exceptions.ZoneflowError) -> str:
    hint = _HINTS.get(type(exc))
    return f"{exc}: {hint}" if hint else str(exc)


def _quiet_stdout() -> None:
    """The reader of stdout has gone (``| head``): send what is left nowhere, so
    that Python's flush at exit does not complain about the broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# Commands that only read, through zoneflow.central.reads (args.reads): see _read.
READ_COMMANDS = frozenset({cmd_zone_list, cmd_zone_show})


def _read(args: argparse.Namespace) -> int:
    """Run a read command: from a local SQLite database with the standard library
    alone where central.reads.fast can be sure to answer as the full path would,
    else through oslo.config and SQLAlchemy (without ORM sessions nor oslo.db),
    whose messages then say what is wrong."""
    from zoneflow.central import reads

    try:
        args.reads = reads.fast(args.config_file or None)
        return int(args.func(args))
    except reads.Unsure:
        from zoneflow import config

        config.setup(args.config_file or None, debug=args.debug, sessions=False)
        args.reads = reads
        return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config_file = (args.config_file or []) + getattr(args, "config_file_after", [])
    if getattr(args, "progress", False):
        args.wait = True
    try:
        if args.func in READ_COMMANDS:
            code = _read(args)
        else:
            from zoneflow import config

            config.setup(args.config_file or None, debug=args.debug)
            code = int(args.func(args))
        sys.stdout.flush()  # here, where a broken pipe can still be caught
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except exceptions.ZoneflowError as exc:
        if args.debug:
            raise
        print(f"zoneflow: error: {_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"zoneflow: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
