"""Which job each change posts, and the job that follows it if the zone's pool grows.

A job is built from the zone's pool as it is when the job is posted. When
the pool gains a target or nameserver while the job runs, the job cannot
make the zone ACTIVE (the new server may not serve it): it leaves the zone
PENDING and posts its follow-up, a recover-zone job for the same serial,
which acts only where the zone is missing (objects.JobOrder). A delete never
makes a zone ACTIVE and needs none.
"""

from __future__ import annotations

from zoneflow import objects

_RECOVER = objects.JobKind.RECOVER_ZONE

CREATE_ZONE = objects.JobOrder(objects.JobKind.CREATE_ZONE, if_pool_grows=_RECOVER)
UPDATE_ZONE = objects.JobOrder(objects.JobKind.UPDATE_ZONE, if_pool_grows=_RECOVER)
DELETE_ZONE = objects.JobOrder(objects.JobKind.DELETE_ZONE)
RECOVER_ZONE = objects.JobOrder(_RECOVER, if_pool_grows=_RECOVER)
