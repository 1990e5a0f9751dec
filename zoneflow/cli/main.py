"""The ``zoneflow`` command line: the parser, and running the command it picked.

Each command is named ``module:function`` in this package and its module is
imported only once the command is known (see the package's docstring).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.cli.output import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERNAL, GRAPH_FORMATS, message

# The one-line description --help shows.
DESCRIPTION = "The ``zoneflow`` command."


def _seconds(text: str) -> int:
    """A whole number of seconds, zero or more, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _workers(text: str) -> int:
    """``zoneflow api --workers``: a number of processes, 1 to 64, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of processes: give 1 to 64 (about one per core)"
        )
    return value


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
        description=DESCRIPTION,
        parents=[_global_options(after_command=False)],
    )
    after = _global_options(after_command=True)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(
        sub: Any,
        name: str,
        func: str,
        help: str,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help, description=help, parents=[after]
        )
        p.set_defaults(command=func)
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
    command(db, "sync", "db:sync", "create or upgrade the database schema")

    pool = groups.add_parser("pool", help="pools of nameservers").add_subparsers(
        dest="cmd", required=True
    )
    p = command(pool, "update", "pool:update", "load pools from a Designate-style pools.yaml")
    p.add_argument("--file", required=True, metavar="POOLS_YAML")
    command(pool, "list", "pool:list_", "list pools")
    p = command(pool, "show", "pool:show", "show a pool's targets and nameservers")
    p.add_argument("name", nargs="?", default="default")
    p = command(
        pool,
        "status",
        "pool:status",
        "per target: zones served at their serial, behind, missing, in error; state, last seen",
    )
    p.add_argument("name", nargs="?", default="default")
    target = pool.add_parser("target", help="one target of a pool").add_subparsers(
        dest="target_cmd", required=True
    )
    p = command(
        target,
        "maintenance",
        "pool:maintenance",
        "leave a target out of the thresholds (on), or count it again once caught up (off)",
    )
    p.add_argument("target", help="the target's id or description ('zoneflow pool show')")
    p.add_argument("state", choices=["on", "off"])

    zone = groups.add_parser("zone", help="zones").add_subparsers(dest="cmd", required=True)
    p = command(zone, "create", "zone:create", "create a zone")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--ttl")
    p.add_argument("--pool")
    p.add_argument("--description")
    waitable(p)
    p = command(zone, "update", "zone:update", "change a zone's email, TTL or description")
    p.add_argument("name")
    p.add_argument("--email")
    p.add_argument("--ttl")
    p.add_argument("--description")
    waitable(p)
    p = command(zone, "delete", "zone:delete", "delete a zone from every nameserver")
    p.add_argument("name")
    waitable(p)
    p = command(
        zone,
        "recover",
        "zone:recover",
        "bring every target to the zone's stored state (after ERROR, or a target left "
        "behind); only targets that lack it are touched",
    )
    p.add_argument("name")
    waitable(p)
    command(zone, "list", "zone_reads:list_", "list zones")
    p = command(zone, "show", "zone_reads:show", "show a zone")
    p.add_argument("name")
    p = command(zone, "status", "zone:status", "what each target serves of a zone")
    p.add_argument("name")

    rs = groups.add_parser("recordset", help="recordsets").add_subparsers(dest="cmd", required=True)
    p = command(rs, "create", "recordset:create", "create a recordset")
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
    p = command(rs, "update", "recordset:update", "replace a recordset's records or TTL")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")
    p.add_argument("--record", action="append", metavar="DATA")
    p.add_argument("--ttl")
    waitable(p)
    p = command(rs, "delete", "recordset:delete", "delete a recordset")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")
    waitable(p)
    p = command(rs, "list", "recordset_reads:list_", "list a zone's recordsets")
    p.add_argument("zone")
    p = command(rs, "show", "recordset_reads:show", "show a recordset")
    p.add_argument("zone")
    p.add_argument("name")
    p.add_argument("--type")

    job = groups.add_parser("job", help="jobs").add_subparsers(dest="cmd", required=True)
    p = command(job, "list", "job:list_", "list jobs, newest first")
    p.add_argument("--limit", type=int, default=50, help="at most this many (0: every job)")
    p.add_argument("--marker", metavar="ID", help="the jobs after this one (the last one listed)")
    p.add_argument(
        "--zone", metavar="NAME_OR_ID", help="only the jobs of this zone (and the batches it rode)"
    )
    p.add_argument("--state", type=str.upper, help="only the jobs in this state (SUCCESS, ...)")
    p.add_argument(
        "--kind", choices=[kind.value for kind in objects.JobKind], help="only jobs of this kind"
    )
    p = command(job, "show", "job:show", "show a job and the state of each of its tasks")
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
    p = command(job, "cancel", "job:cancel", "take a job no conductor is running off the board")
    p.add_argument("id")
    p = command(job, "purge", "job:purge", "delete the logbooks of long-ended jobs now")
    p.add_argument(
        "--older-than",
        type=_seconds,
        metavar="SECONDS",
        help="age of the jobs to purge (default: [conductor] job_retention)",
    )

    flow = groups.add_parser("flow", help="flows").add_subparsers(dest="cmd", required=True)
    p = command(flow, "show", "flow:show", "draw a flow's graph")
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
        "targets:up",
        "run local nameservers as a pool: write DIR/pools.yaml for them (fed by [mdns] host "
        "and port) and serve until Ctrl-C, SIGTERM or SIGHUP, then stop them all",
    )
    p.add_argument("--kind", default="bind9", help="bind9 (named) or knot (knotd)")
    p.add_argument("--count", type=int, default=2, help="how many servers (default 2)")
    p.add_argument("--dir", default="targets", help="where they live (default ./targets)")
    p.add_argument("--pool", default="default", help="the pool's name in pools.yaml")

    p = command(
        groups,
        "events",
        "events:show",
        "print the events kept (zone, recordset, job changes...), or follow them as they come",
    )
    p.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("--zone", metavar="ZONE_ID", help="only this zone's events")
    p.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only events of this type (repeatable): zone, recordset, job, task, target, alarm",
    )
    p.add_argument(
        "--after",
        metavar="EVENT_ID",
        help="start after this event id (default: every event kept, or from now with --follow)",
    )

    for name, func, text in (
        ("conductor", "daemons:conductor", "run a conductor: claim jobs and run their flows"),
        ("mdns", "daemons:mdns", "run the mini-DNS nameservers transfer zones from"),
        ("api", "daemons:api", "serve the REST API (Designate's v2) on [api] host:port"),
        (
            "all-in-one",
            "daemons:all_in_one",
            "run conductor, mdns, relay, the API, a producer and the inspector in one process",
        ),
        (
            "inspector",
            "daemons:inspector",
            "watch every target's health: alarm on DOWN, recovery when it is back",
        ),
        (
            "producer",
            "daemons:producer",
            "run a producer: recovery, audit and purge of its share of the zones",
        ),
    ):
        daemon = command(groups, name, func, text)
        if name == "api":
            daemon.add_argument(
                "--workers",
                type=_workers,
                metavar="N",
                help="processes serving the API's one port (default [api] workers, 1)",
            )
    return parser


def _quiet_stdout() -> None:
    """The reader of stdout has gone (``| head``): send what is left nowhere, so
    that Python's flush at exit does not complain about the broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _function(command: str) -> Callable[[argparse.Namespace], int]:
    """The function a command names (``module:function``), its module imported now."""
    module, _, name = command.partition(":")
    func: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"zoneflow.cli.{module}"), name
    )
    return func


# Commands that only read, through zoneflow.central.reads (args.reads): see run_read.
READ_COMMANDS = frozenset({"zone_reads:list_", "zone_reads:show"})


def run_read(args: argparse.Namespace) -> int:
    """Run a read command: from a local SQLite database with the standard library
    alone where central.reads.fast can be sure to answer as the full path would,
    else through oslo.config and SQLAlchemy (without ORM sessions nor oslo.db),
    whose messages then say what is wrong."""
    from zoneflow.central import reads  # not for --help, which reads no database

    func = _function(args.command)
    try:
        args.reads = reads.fast(args.config_file or None)
        return int(func(args))
    except reads.Unsure:
        from zoneflow import config  # oslo.config: only once the fast path gives up

        config.setup(args.config_file or None, debug=args.debug, sessions=False)
        args.reads = reads
        return int(func(args))


def run(args: argparse.Namespace) -> int:
    """Run any other command, once the configuration is read."""
    from zoneflow import config  # oslo.config: not for --help nor the read commands

    config.setup(args.config_file or None, debug=args.debug)
    return int(_function(args.command)(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config_file = (args.config_file or []) + getattr(args, "config_file_after", [])
    if getattr(args, "progress", False):
        args.wait = True
    try:
        code = run_read(args) if args.command in READ_COMMANDS else run(args)
        sys.stdout.flush()  # here, where a broken pipe can still be caught
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except exceptions.ZoneflowError as exc:
        if args.debug:
            raise
        print(f"zoneflow: error: {message(exc)}", file=sys.stderr)
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
