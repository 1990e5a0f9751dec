"""The commands that run a service until stopped: conductor, mdns, api, all-in-one,
producer.

Each module is imported when its command runs: the four pull in different
servers (TaskFlow's conductor, the DNS server, the web app)."""

from __future__ import annotations

import argparse


def conductor(args: argparse.Namespace) -> int:
    from zoneflow.conductor import daemon

    daemon.run_forever()
    return 0


def mdns(args: argparse.Namespace) -> int:
    from zoneflow.mdns import server

    server.run()
    return 0


def api(args: argparse.Namespace) -> int:
    from zoneflow.api import server

    server.run_forever(getattr(args, "workers", None))
    return 0


def all_in_one(args: argparse.Namespace) -> int:
    from zoneflow import allinone

    allinone.run_forever()
    return 0


def inspector(args: argparse.Namespace) -> int:
    from zoneflow.inspector import daemon

    daemon.run_forever()
    return 0


def producer(args: argparse.Namespace) -> int:
    from zoneflow.producer import daemon

    daemon.run_forever()
    return 0
