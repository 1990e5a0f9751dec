"""Which job each change posts, which jobs go first, and the job that follows one
if the zone's pool grows.

A job is built from the zone's pool as it is when the job is posted. When
the pool gains a target or nameserver while the job runs, the job cannot
make the zone ACTIVE (the new server may not serve it): it leaves the zone
PENDING and posts its follow-up, a recover-zone job for the same serial,
which acts only where the zone is missing (objects.JobOrder). A delete never
makes a zone ACTIVE and needs none.

A user's change goes before upkeep (objects.JobPriority): the relays post,
and the conductors claim, its job ahead of a backfill's thousands, which
take what is left. An operator's ``zone recover`` is a change someone waits
for; the producer's recoveries, a pool's backfill, a returning target's
catch-up and a retired target's drain are upkeep. A follow-up keeps the
priority of the job it follows.
"""

from __future__ import annotations

from zoneflow import objects

_RECOVER = objects.JobKind.RECOVER_ZONE
_CHANGE = objects.JobPriority.CHANGE
_UPKEEP = objects.JobPriority.UPKEEP

CREATE_ZONE = objects.JobOrder(
    objects.JobKind.CREATE_ZONE, if_pool_grows=_RECOVER, priority=_CHANGE
)
UPDATE_ZONE = objects.JobOrder(
    objects.JobKind.UPDATE_ZONE, if_pool_grows=_RECOVER, priority=_CHANGE
)
DELETE_ZONE = objects.JobOrder(objects.JobKind.DELETE_ZONE, priority=_CHANGE)
RECOVER_ZONE = objects.JobOrder(_RECOVER, if_pool_grows=_RECOVER, priority=_CHANGE)

# Upkeep: recovering a zone the producer found in need (or a target missed), and
# removing a deleted zone from targets that still serve it.
RECOVERY = objects.JobOrder(_RECOVER, if_pool_grows=_RECOVER, priority=_UPKEEP)
REMOVAL = objects.JobOrder(_RECOVER, priority=_UPKEEP)
RETIRE_TARGET = objects.JobOrder(objects.JobKind.RETIRE_TARGET, priority=_UPKEEP)
