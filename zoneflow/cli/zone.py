"""``zoneflow zone``: create, update, delete and recover zones; what each target
serves of one. (``zone list`` and ``zone show`` are in zone_reads, which must
start fast.)"""

from __future__ import annotations

import argparse

from zoneflow import objects
from zoneflow.central import status as serving
from zoneflow.central import waiting
from zoneflow.central import zones as central_zones
from zoneflow.cli import changes, output
from zoneflow.cli.projects import project, scope
from zoneflow.dns import validation


def create(args: argparse.Namespace) -> int:
    validation.absolute_zone_name(args.name)  # the API's rule (Designate's) here too
    zone = changes.change(
        lambda: central_zones.create_zone(
            args.name,
            args.email,
            ttl=args.ttl,
            pool=args.pool,
            description=args.description,
            project_id=project(args),
        ),
    )
    return changes.finish_zone_change(args, zone)


def update(args: argparse.Namespace) -> int:
    zone = changes.change(
        lambda: central_zones.update_zone(
            args.name,
            email=args.email,
            ttl=args.ttl,
            description=args.description,
            project_id=scope(args),
        ),
    )
    return changes.finish_zone_change(args, zone)


def delete(args: argparse.Namespace) -> int:
    zone = changes.change(lambda: central_zones.delete_zone(args.name, project_id=scope(args)))
    if args.wait:
        finished = changes.wait(args, zone.id)
        if finished.status == objects.Status.ERROR:
            output.show(args, finished)
            return changes.failed(finished)
        zone = waiting.zone_by_id(zone.id) or zone
    output.show(args, zone)
    return 0


def recover(args: argparse.Namespace) -> int:
    zone = changes.change(lambda: central_zones.recover_zone(args.name, project_id=scope(args)))
    # Waiting ends at ACTIVE, ERROR, or DELETED for a zone whose delete was recovered.
    return changes.finish_zone_change(args, zone)


def status(args: argparse.Namespace) -> int:
    found = serving.zone_serving(args.name, project_id=scope(args))
    if args.json:
        output.list_(args, found.rows, [])
        return 0
    zone = found.zone
    seen = {t.target_id: t for t in found.targets}
    print(
        f"{zone.name} serial {zone.serial}: {zone.status}/{zone.action}"
        + (f" ({zone.error})" if zone.error else "")
    )
    print(
        output.table(
            [
                [
                    found.labels.get(r.target_id, r.target_id),
                    r.serial,
                    r.status,
                    r.error or "",
                    output.plain(r.updated_at),
                    _last_seen(seen.get(r.target_id)),
                ]
                for r in found.rows
            ],
            ["target", "serial", "status", "last error", "updated", "last seen"],
        )
    )
    return 0


def _last_seen(target: serving.TargetServing | None) -> str:
    """When zoneflow last had news of the target with the zone, and from what."""
    if target is None or target.last_seen is None:
        return ""
    return f"{output.plain(target.last_seen)} ({target.seen_by})"
