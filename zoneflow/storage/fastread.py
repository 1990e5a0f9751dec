"""``zoneflow zone list`` and ``zone show`` on SQLite, with the standard library alone.

Why: a command the user types must answer within 0.3 s. Reading the
configuration with oslo.config and the database with SQLAlchemy costs about
0.5 s of imports (0.18 s and 0.35 s on the machine of doc/benchmarks.md)
before the first row is read; configparser and sqlite3 cost a few milliseconds.

What guards it: it answers only where it is sure to read what the full path
would (:func:`zoneflow.config.setup`, then :mod:`zoneflow.storage.reads`), and
raises :class:`Unsure` otherwise, upon which the caller takes the full path,
whose messages ("run 'zoneflow db sync'", "config file ... does not exist")
the user then gets:

- oslo.config already loaded in this process: it may hold overrides that the
  files do not show, and the full path would cost nothing more;
- what only oslo.config reads: environment overrides (``OS_DATABASE__...``),
  ``*.conf.d`` directories, ``config_source``/``config_dir``, ``$``
  substitutions, ``[DATABASE]`` spelled otherwise, a file configparser cannot
  parse, a config file that does not exist, a ``busy_wait`` oslo.config refuses;
- a ``[database] connection`` that is not a plain SQLite file URL
  (PostgreSQL, ``sqlite://`` in memory, query parameters, escapes);
- any sqlite3 error: no database file (opened read-only, ``mode=ro``, so it is
  never created), no schema yet, a column missing, a database busy for longer
  than ``busy_wait``; and a timestamp ``datetime.fromisoformat`` cannot read.

The answers are storage.reads' own: the same objects.Zone values, order,
project filter and id-or-name lookup (tests/unit/test_fastread.py compares them).
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import datetime
import os
import re
import sqlite3
import sys
import typing
import urllib.parse
from typing import Any

from zoneflow import defaults, exceptions, objects
from zoneflow.storage import LIVE

_FIELDS = [field.name for field in dataclasses.fields(objects.Zone)]
_DATETIMES = {
    name
    for name, hint in typing.get_type_hints(objects.Zone).items()
    if datetime.datetime in (hint, *typing.get_args(hint))
}
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)

# A SQLite file as SQLAlchemy's make_url reads it: the path after the third
# slash, taken as it is (no query, no %-escapes for one of them to undo).
_SQLITE_FILE = re.compile(r"sqlite:///(?P<path>[^?#%\s]+)")


class Unsure(Exception):
    """The fast path cannot be sure to read what the full path would: take that."""


@dataclasses.dataclass(frozen=True)
class Database:
    """A SQLite database file, read as :mod:`zoneflow.storage.reads` reads it."""

    path: str
    busy_wait: float = defaults.DEFAULT_BUSY_WAIT

    def get_zone(self, ref: str, *, project_id: str | None = None) -> objects.Zone:
        """A live zone by id or name (with or without the trailing dot)."""
        name = ref.lower() if ref.endswith(".") else ref.lower() + "."
        rows = self._zones("(id = :ref OR name = :name)", project_id, ref=ref, name=name)
        if not rows:
            raise exceptions.ZoneNotFound(f"zone {ref!r} does not exist")
        return rows[0]

    def list_zones(self, *, project_id: str | None = None) -> list[objects.Zone]:
        return self._zones("1", project_id, order_by="name")

    def _zones(
        self, where: str, project_id: str | None, *, order_by: str = "", **params: str
    ) -> list[objects.Zone]:
        """The live zones ``where`` selects, of ``project_id`` unless it is None."""
        sql = f"SELECT {_COLUMNS} FROM zones WHERE {where} AND deleted = :live"
        if project_id is not None:
            sql += " AND project_id = :project_id"
        if order_by:
            sql += f" ORDER BY {order_by}"
        uri = f"file:{urllib.parse.quote(self.path)}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=self.busy_wait)) as conn:
                rows = conn.execute(sql, {**params, "live": LIVE, "project_id": project_id})
                return [_zone(row) for row in rows]
        except (sqlite3.Error, ValueError) as exc:
            raise Unsure(f"sqlite3: {exc}") from exc


def _zone(row: tuple[Any, ...]) -> objects.Zone:
    values = dict(zip(_FIELDS, row, strict=True))
    for name in _DATETIMES:
        if values[name] is not None:
            values[name] = datetime.datetime.fromisoformat(values[name])
    return objects.Zone(**values)


def open_database(config_files: list[str] | None = None) -> Database:
    """The database ``config.setup(config_files)`` would point this process at.

    Raises :class:`Unsure` where it cannot be sure (see the module's docstring).
    """
    if "oslo_config" in sys.modules:
        raise Unsure("oslo.config is loaded: it may hold overrides")
    if any(name.startswith(("OS_DATABASE__", "OS_DEFAULT__")) for name in os.environ):
        raise Unsure("oslo.config environment overrides")
    if _config_dirs():
        raise Unsure("oslo.config would read config directories")
    settings = {"connection": defaults.DEFAULT_CONNECTION}
    for path in config_files or defaults.config_files():
        settings.update(_database_section(path))  # the last file wins, as in oslo.config
    match = _SQLITE_FILE.fullmatch(settings["connection"])
    if match is None or match["path"] == ":memory:" or match["path"].startswith("file:"):
        raise Unsure("not a plain SQLite file URL")
    return Database(match["path"], _busy_wait(settings.get("busy_wait")))


def _config_dirs() -> list[str]:
    """The ``*.conf.d`` directories oslo.config finds for zoneflow (its find_config_dirs)."""
    prog = os.path.basename(sys.argv[0]).removesuffix(".py")
    places = [os.path.expanduser("~/.zoneflow"), os.path.expanduser("~"), "/etc/zoneflow", "/etc"]
    places += [
        os.path.join(os.environ[var], "etc", "zoneflow")
        for var in ("SNAP_COMMON", "SNAP")
        if os.environ.get(var)
    ]
    candidates = (
        os.path.join(place, f"{name}.conf.d") for place in places for name in ("zoneflow", prog)
    )
    return [path for path in candidates if os.path.exists(path)]


def _database_section(path: str) -> dict[str, str]:
    """One file's ``[database]`` options, read as oslo.config reads them."""
    # No DEFAULT section feeding the others, no interpolation, names as written.
    parser = configparser.RawConfigParser(default_section="\0", strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except (OSError, UnicodeError, configparser.Error) as exc:
        raise Unsure(f"{path}: {exc}") from exc
    for section in parser.sections():
        if section == "DEFAULT" and parser.has_option(section, "config_source"):
            raise Unsure("config_source")
        if section == "DEFAULT" and parser.has_option(section, "config_dir"):
            raise Unsure("config_dir")
        if section != "database" and section.lower() == "database":
            raise Unsure(f"[{section}]: oslo.config reads it as [database]")
    if not parser.has_section("database"):
        return {}
    found = {
        name: value
        for name, value in parser.items("database")
        if name in ("connection", "busy_wait")
    }
    if any("$" in value or "\n" in value for value in found.values()):
        raise Unsure("a value oslo.config would read otherwise")
    return found


def _busy_wait(value: str | None) -> float:
    """``[database] busy_wait`` as oslo.config's FloatOpt (min 0.1) takes it."""
    if value is None:
        return defaults.DEFAULT_BUSY_WAIT
    try:
        seconds = float(value)
    except ValueError as exc:
        raise Unsure(f"busy_wait {value!r}") from exc
    if not seconds >= 0.1:
        raise Unsure(f"busy_wait {value!r}")
    return seconds
