"""The project a command acts for, as the API's caller's is: light, so that the
fast read commands can use it."""

from __future__ import annotations

import argparse
import os


def project(args: argparse.Namespace) -> str | None:
    """The project the command acts for: --project, else $ZONEFLOW_PROJECT, else none
    (the operator's own zones, which only an all-projects API call shows)."""
    return args.project or os.environ.get("ZONEFLOW_PROJECT") or None


def scope(args: argparse.Namespace) -> str | None:
    """The project whose zones the command sees (None: every project's), as in the API."""
    return None if args.all_projects else project(args)
