"""``zoneflow recordset create``, ``update`` and ``delete``: a zone's recordsets changed.

The reads (``list``, ``show``) are in :mod:`zoneflow.cli.recordset_reads`, which
loads neither the posting of jobs nor the waiting for them.
"""

from __future__ import annotations

import argparse
import dataclasses

from zoneflow import exceptions, objects
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import waiting
from zoneflow.central import zones as central_zones
from zoneflow.cli import changes, output
from zoneflow.cli.projects import scope
from zoneflow.dns import validation


def create(args: argparse.Namespace) -> int:
    # The API's rule (Designate's) here too: names are given absolute.
    zone = central_zones.get_zone(args.zone)
    validation.absolute_recordset_name(args.name, zone.name)
    validation.absolute_record_names(args.type, args.record, zone=zone.name)
    recordset = changes.change(
        lambda: central_recordsets.create_recordset(
            args.zone, args.name, args.type, args.record, ttl=args.ttl, project_id=scope(args)
        ),
    )
    return _finish_change(args, recordset)


def update(args: argparse.Namespace) -> int:
    if args.record is None and args.ttl is None:
        raise exceptions.InvalidInput("nothing to change: give --record and/or --ttl")
    recordset = changes.change(
        lambda: central_recordsets.update_recordset(
            args.zone,
            args.name,
            rtype=args.type,
            records=args.record,
            ttl=args.ttl,
            project_id=scope(args),
            absolute_names=True,
        ),
    )
    return _finish_change(args, recordset)


def delete(args: argparse.Namespace) -> int:
    recordset = changes.change(
        lambda: central_recordsets.delete_recordset(
            args.zone, args.name, rtype=args.type, project_id=scope(args)
        )
    )
    return _finish_change(args, recordset, deleted=True)


def _finish_change(
    args: argparse.Namespace, recordset: objects.RecordSet, *, deleted: bool = False
) -> int:
    """Show the recordset as the nameservers now serve it; once a delete has been
    waited for, say that it is gone (storage no longer has it to show)."""
    if args.wait:
        zone = changes.wait(args, recordset.zone_id)
        if zone.status == objects.Status.ERROR:
            output.show(args, zone)
            return changes.failed(zone)
        if deleted:
            gone = dataclasses.replace(
                recordset, status=objects.Status.DELETED, action=objects.Action.NONE
            )
            if args.json:
                output.show(args, gone)
            else:
                print(
                    f"{objects.with_article(gone.type)} recordset {gone.name} was deleted: "
                    f"the nameservers of {zone.name} no longer serve it"
                )
            return 0
        recordset = waiting.recordset_by_id(recordset.zone_id, recordset.id)
    output.show(args, recordset)
    return 0
