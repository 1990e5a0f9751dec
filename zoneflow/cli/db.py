"""``zoneflow db``: the database's schema."""

from __future__ import annotations

import argparse

from zoneflow.central import database


def sync(args: argparse.Namespace) -> int:
    database.upgrade()
    print("database is up to date")
    return 0
