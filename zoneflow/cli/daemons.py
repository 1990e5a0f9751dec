"""The commands that run a service until stopped: conductor, mdns, api, all-in-one,
producer.

Each module is imported when its command runs: the four pull in different
servers (TaskFlow's conductor, the DNS server, the web app).

Once its modules are imported, each freezes what the process holds
(:func:`_frozen`) before it serves.
"""

from __future__ import annotations

import argparse
import gc


def conductor(args: argparse.Namespace) -> int:
    from zoneflow.conductor import daemon

    _frozen()
    daemon.run_forever()
    return 0


def mdns(args: argparse.Namespace) -> int:
    from zoneflow.mdns import server

    _frozen()
    server.run()
    return 0


def api(args: argparse.Namespace) -> int:
    from zoneflow.api import server

    _frozen()
    server.run_forever(getattr(args, "workers", None))
    return 0


def all_in_one(args: argparse.Namespace) -> int:
    from zoneflow import allinone

    _frozen()
    allinone.run_forever()
    return 0


def inspector(args: argparse.Namespace) -> int:
    from zoneflow.inspector import daemon

    _frozen()
    daemon.run_forever()
    return 0


def producer(args: argparse.Namespace) -> int:
    from zoneflow.producer import daemon

    _frozen()
    daemon.run_forever()
    return 0


def _frozen() -> None:
    """Leave what the process holds now (its modules, the bulk of its heap, all kept
    until it exits) out of every garbage collection to come. A full collection
    walks every object tracked and stops every thread while it does: 79 to 131 ms
    for a daemon's modules alone (bench/gc_pauses.py), during which mdns answers
    nothing and polls wait. Frozen before an API's workers are forked,
    they also stay shared with them (a collection no longer writes to them)."""
    gc.freeze()
