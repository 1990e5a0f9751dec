"""The reads the CLI's read commands make: zones.

Apart from :mod:`zoneflow.central.zones` (which offers them too) so that
``zoneflow zone list`` imports neither the validation of changes (dnspython)
nor storage's ORM: see :mod:`zoneflow.storage.reads`.

Two ways to make them, with the same answers (:class:`Reads`): this module's
functions, through SQLAlchemy once :func:`zoneflow.config.setup` has run; and
:func:`fast`, a local SQLite database read with the standard library alone
(:mod:`zoneflow.storage.fastread`), which raises :class:`Unsure` wherever it
cannot be sure to answer as they would.
"""

from __future__ import annotations

from typing import Protocol

from zoneflow import objects
from zoneflow.storage import fastread

Unsure = fastread.Unsure


class Reads(Protocol):
    def get_zone(self, ref: str, *, project_id: str | None = None) -> objects.Zone: ...

    def list_zones(self, *, project_id: str | None = None) -> list[objects.Zone]: ...


def fast(config_files: list[str] | None = None) -> Reads:
    """The reads of the database ``config.setup(config_files)`` would use, without it."""
    return fastread.open_database(config_files)


def get_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    from zoneflow.storage import reads as storage  # SQLAlchemy: only on this path

    return storage.get_zone(ref, project_id=project_id)


def list_zones(*, project_id: str | None = None) -> list[objects.Zone]:
    from zoneflow.storage import reads as storage

    return storage.list_zones(project_id=project_id)
