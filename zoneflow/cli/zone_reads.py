"""``zoneflow zone list`` and ``zoneflow zone show``: the read commands that must
start fast.

This module imports nothing beyond the standard library and the CLI's output:
main gives each command its reads (``args.reads``), from a local SQLite
database with the standard library alone where it can be sure to answer as
the full path would, else through oslo.config and SQLAlchemy (see
:func:`zoneflow.cli.main.run_read`).
"""

from __future__ import annotations

import argparse

from zoneflow.cli import output, projects


def list_(args: argparse.Namespace) -> int:
    scope = projects.scope(args)
    columns = ["name", "id", "serial", "status", "action"]
    if scope is None:
        columns.append("project_id")  # zones of every project: say whose each is
    output.list_(args, args.reads.list_zones(project_id=scope), columns)
    return 0


def show(args: argparse.Namespace) -> int:
    output.show(args, args.reads.get_zone(args.name, project_id=projects.scope(args)))
    return 0
