"""The reads the CLI's read commands make: zones.

Apart from :mod:`zoneflow.central.api` (which offers them too) so that
``zoneflow zone list`` imports neither the validation of changes (dnspython)
nor storage's ORM: see :mod:`zoneflow.storage.reads`.
"""

from __future__ import annotations

from zoneflow import objects
from zoneflow.storage import reads as storage


def get_zone(ref: str, *, project_id: str | None = None) -> objects.Zone:
    return storage.get_zone(ref, project_id=project_id)


def list_zones(*, project_id: str | None = None) -> list[objects.Zone]:
    return storage.list_zones(project_id=project_id)
