"""What mdns reads for a full zone transfer (AXFR) in one snapshot, and the log of
the transfers it served each client.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import cast

import sqlalchemy as sa
from oslo_db import exception as db_exc
from sqlalchemy.orm import Session

from zoneflow import exceptions, objects
from zoneflow.storage import conversions, db, events, models, options

CONF = options.CONF


_GET_LIVE_ZONE = sa.select(*(getattr(models.Zone, name) for name in conversions.ZONE_FIELDS)).where(
    models.Zone.id == sa.bindparam("id"), models.Zone.deleted == models.LIVE
)


_ZONE_RECORDS = (
    sa.select(
        models.RecordSet.name, models.RecordSet.type, models.RecordSet.ttl, models.Record.data
    )
    .join(models.Record, models.Record.recordset_id == models.RecordSet.id)
    .where(models.RecordSet.zone_id == sa.bindparam("zone_id"))
    # Each RRset's records together; their order within it means nothing to
    # a secondary, and leaving it out spares a sort (a covering index does it).
    .order_by(models.RecordSet.name, models.RecordSet.type)
)


@contextlib.contextmanager
def zone_for_transfer(
    zone_id: str,
) -> Iterator[tuple[objects.Zone, Iterator[tuple[str, str, int | None, str]]]]:
    """A zone and its records as (owner, type, ttl or None, data), for one AXFR.

    Everything is read in one transaction, so the records are those of the
    serial returned, even while changes land (PostgreSQL: REPEATABLE READ;
    SQLite's WAL readers see one snapshot anyway). The records come
    ``[storage] transfer_batch_size`` at a time (a server-side cursor on
    PostgreSQL) grouped by owner and type; the transaction stays open until the
    block ends.
    """
    # Not db.reader(): its session belongs to one thread, and mdns reads a
    # stream on whichever pool thread is free, one batch after another. And
    # Core rows, not ORM ones: a transfer is a hundred thousand of them.
    with db.snapshot() as connection:
        row = connection.execute(_GET_LIVE_ZONE, {"id": zone_id}).first()
        if row is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} does not exist")
        records = connection.execution_options(yield_per=CONF.storage.transfer_batch_size).execute(
            _ZONE_RECORDS, {"zone_id": zone_id}
        )
        yield objects.Zone(*row), cast(Iterator[tuple[str, str, int | None, str]], records)


def record_transfers(
    transfers: Sequence[tuple[str, objects.ZoneTransfer]],
    asked: Sequence[tuple[str, objects.ZoneTransfer]] = (),
) -> None:
    """Add (zone id, transfers) that mdns served since its last write, in one transaction.

    Each one's ``count`` is of the transfers since then: added to the row's
    when it is of the same serial, else it starts the row's count again.
    Zones deleted meanwhile are left out.

    Each transfer, and each of the queries mdns saw (``asked``: a target asking
    for a zone's SOA, or for an IXFR from the serial it serves), is published in
    the same transaction (topic ``propagation``): the propagation model's view
    of what targets fetched. The queries are not stored.
    """
    with db.writer() as session:
        live = _publish_seen(session, transfers, asked)
        # The rows already there, in one read: a write holds many zones' transfers.
        rows = {
            (row.zone_id, row.source): row
            for row in session.scalars(
                sa.select(models.ZoneTransfer).where(
                    models.ZoneTransfer.zone_id.in_({zone_id for zone_id, _ in transfers})
                )
            )
        }
        new = [
            (zone_id, seen)
            for zone_id, seen in transfers
            if zone_id in live and (zone_id, seen.source) not in rows
        ]
        if not _insert_all(session, new):
            for zone_id, seen in new:
                row = _insert_one(session, zone_id, seen)
                if row is not None:
                    rows[(zone_id, seen.source)] = row
        for zone_id, seen in transfers:
            row = rows.get((zone_id, seen.source))
            if row is None:
                continue  # inserted above, or its zone is gone
            if row.serial == seen.serial:
                row.count += seen.count
            else:
                row.serial, row.count, row.first_at = seen.serial, seen.count, seen.first_at
            row.kind, row.last_at, row.completed = seen.kind, seen.last_at, seen.completed


def _insert_all(session: Session, new: Sequence[tuple[str, objects.ZoneTransfer]]) -> bool:
    """The first transfers to these clients, in one statement (a new nameserver
    onboarding thousands of zones makes thousands a second); False, and nothing
    written, when one of them is already there or its zone has gone since."""
    if not new:
        return True
    try:
        with session.begin_nested():
            session.execute(
                sa.insert(models.ZoneTransfer),
                [{"zone_id": zone_id, **dataclasses.asdict(seen)} for zone_id, seen in new],
            )
        return True
    except (db_exc.DBReferenceError, db_exc.DBDuplicateEntry):
        return False


def _insert_one(
    session: Session, zone_id: str, seen: objects.ZoneTransfer
) -> models.ZoneTransfer | None:
    """One client's first transfer of a zone, when :func:`_insert_all` met a race:
    None once written (or its zone is gone); the row to add to when another mdns
    wrote it first."""
    try:
        with session.begin_nested():
            session.add(models.ZoneTransfer(zone_id=zone_id, **dataclasses.asdict(seen)))
        return None
    except db_exc.DBReferenceError:
        return None  # the zone is gone: nothing to explain about it
    except db_exc.DBDuplicateEntry:
        return _transfer_row(session, zone_id, seen.source)


def _publish_seen(
    session: Session,
    transfers: Sequence[tuple[str, objects.ZoneTransfer]],
    asked: Sequence[tuple[str, objects.ZoneTransfer]],
) -> set[str]:
    """Publish what mdns saw of the zones still live, each event with its zone's project;
    the ids of those live zones."""
    zone_ids = {zone_id for zone_id, _ in (*transfers, *asked)}
    if not zone_ids:
        return set()
    live = sa.select(models.Zone.id, models.Zone.project_id).where(
        models.Zone.id.in_(zone_ids), models.Zone.deleted == models.LIVE
    )
    projects = {zone_id: project_id for zone_id, project_id in session.execute(live)}
    events.write(
        session,
        [
            events.transfer_seen(zone_id, seen, projects[zone_id], asked=is_query)
            for batch, is_query in ((transfers, False), (asked, True))
            for zone_id, seen in batch
            if zone_id in projects
        ],
    )
    return set(projects)


def _transfer_row(session: Session, zone_id: str, source: str) -> models.ZoneTransfer | None:
    return session.scalars(
        sa.select(models.ZoneTransfer).where(
            models.ZoneTransfer.zone_id == zone_id, models.ZoneTransfer.source == source
        )
    ).first()


def list_transfers(zone_id: str) -> list[objects.ZoneTransfer]:
    """The last transfers mdns served each client address of a zone, newest first."""
    with db.reader() as session:
        rows = session.scalars(
            sa.select(models.ZoneTransfer)
            .where(models.ZoneTransfer.zone_id == zone_id)
            .order_by(models.ZoneTransfer.last_at.desc(), models.ZoneTransfer.source)
        )
        return [conversions.value(objects.ZoneTransfer, row) for row in rows]
