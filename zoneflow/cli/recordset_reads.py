"""``zoneflow recordset list`` and ``show``: a zone's recordsets read.

Apart from :mod:`zoneflow.cli.recordset` so that a read imports neither the
posting of jobs (TaskFlow's board, kazoo) nor the following of a job's steps
(TaskFlow's logbooks), which cost a third of a second of every command's start.
"""

from __future__ import annotations

import argparse

from zoneflow.central import recordsets as central_recordsets
from zoneflow.cli import output
from zoneflow.cli.projects import scope


def list_(args: argparse.Namespace) -> int:
    # The zone's SOA and apex NS are listed too, built from its pool with
    # dnspython as mdns serves them.
    output.list_(
        args,
        central_recordsets.list_recordsets(args.zone, project_id=scope(args)),
        ["name", "type", "ttl", "records", "status"],
    )
    return 0


def show(args: argparse.Namespace) -> int:
    output.show(
        args,
        central_recordsets.get_recordset(
            args.zone, args.name, rtype=args.type, project_id=scope(args)
        ),
    )
    return 0
