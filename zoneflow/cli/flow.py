"""``zoneflow flow show``: draw a kind of job's flow."""

from __future__ import annotations

import argparse
import sys

from zoneflow.central import drawing


def show(args: argparse.Namespace) -> int:
    dot = drawing.flow_dot(args.kind, pool=args.pool)
    if args.format == "dot":
        sys.stdout.write(dot)
    else:
        sys.stdout.buffer.write(drawing.image(dot, args.format))
    return 0
