"""What the commands print: tables, ``--json``, and one-line errors with a hint.

Loaded by every command, ``--help`` included: it imports nothing heavy.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any

from zoneflow import exceptions

EXIT_ERROR = 1
EXIT_INTERNAL = 2
# What a shell reports for a command killed by SIGPIPE: `zoneflow job list | head`.
EXIT_BROKEN_PIPE = 128 + 13

# The formats a graph is written in (``job show --graph``).
GRAPH_FORMATS = ("dot", "svg", "png")

# The command to run next, added to an error; storage's messages name no command,
# since the API reaches them too.
_HINTS: dict[type[exceptions.ZoneflowError], str] = {
    exceptions.ZoneNotFound: "'zoneflow zone list' shows the zones there are",
    exceptions.RecordSetNotFound: "'zoneflow recordset list ZONE' shows the ones there are",
    exceptions.JobNotFound: "'zoneflow job list' shows the jobs there are",
}


def plain(value: Any) -> Any:
    """``value`` as JSON's types: dataclasses as dicts, times as ISO 8601 text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def show(args: argparse.Namespace, value: Any) -> None:
    """One object: a key per line, or JSON with --json."""
    shown = plain(value)
    if args.json:
        print(json.dumps(shown, indent=2, sort_keys=True))
        return
    width = max(len(k) for k in shown)
    for key, item in shown.items():
        if isinstance(item, list):
            item = ", ".join(str(i) for i in item)
        print(f"{key.ljust(width)}  {'' if item is None else item}")


def list_(args: argparse.Namespace, items: Sequence[Any], headers: Sequence[str]) -> None:
    """Objects as a table of the ``headers`` columns, or every field as JSON with --json."""
    if args.json:
        print(json.dumps([plain(i) for i in items], indent=2, sort_keys=True))
        return
    rows = []
    for item in items:
        shown = plain(item)
        rows.append(
            [
                ", ".join(map(str, v)) if isinstance(v, list) else v
                for v in (shown[h] for h in headers)
            ]
        )
    print(table(rows, headers))


def say(line: str) -> None:
    """A line on stderr, at once: what a wait is doing."""
    print(line, file=sys.stderr, flush=True)


def message(exc: exceptions.ZoneflowError) -> str:
    """The error's message, with the command that helps next where there is one."""
    hint = _HINTS.get(type(exc))
    return f"{exc}: {hint}" if hint else str(exc)
