"""``zoneflow events``: the event stream, as ``/v2/events`` serves it, on stdout.

One line per event (with ``--json``, the event as one JSON object per line),
scoped to the command's project as every other command; ``--follow`` keeps
printing them as they are committed, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json

from zoneflow import objects
from zoneflow.central import events as central_events
from zoneflow.cli import projects

# Seconds each wait for new events lasts: Ctrl-C is answered between waits.
WAIT = 1.0


def show(args: argparse.Namespace) -> int:
    wanted = central_events.event_filter(
        scope=projects.scope(args), zone_id=args.zone, types=args.type
    )
    after = central_events.resume_after(args.after, named="--after")
    if after is None and not args.follow:
        after = 0
    subscription = central_events.follow(wanted, after=after)
    while True:
        found = subscription.next(WAIT if args.follow else 0.0)
        for event in found:
            print(_line(args, event), flush=True)
        if not found and not args.follow:
            return 0


def _line(args: argparse.Namespace, event: objects.Event) -> str:
    if args.json:
        return json.dumps(
            {
                "id": event.id,
                "type": event.topic,
                "table": event.table,
                "key": event.key,
                "action": event.action,
                "value": event.value,
                "project_id": event.project_id,
                "zone_id": event.zone_id,
                "created_at": event.created_at.isoformat(),
            }
        )
    state = event.value.get("status") or event.value.get("state") or ""
    name = event.value.get("name") or event.value.get("zone_name") or ""
    return (
        f"{event.id} {event.created_at.isoformat(timespec='seconds')} {event.topic} "
        f"{event.action} {event.key} {name} {state}".rstrip()
    )
