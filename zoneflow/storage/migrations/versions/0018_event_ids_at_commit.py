"""PostgreSQL: an event's id is drawn by its transaction's COMMIT, not by the client

Event ids follow commit order (zoneflow.storage.events): each transaction that
writes events takes one advisory lock before their ids are drawn and holds it
until it ends. The client took it, so it was held across the client's last
round trips (the insert, the NOTIFYs, the COMMIT): on a busy two-core machine
each one waits for its process's turn at the CPU, and the load benchmark
measured publishers waiting 220 ms on average for the lock, the API's answers
and the conductors' status writes queued behind one another.

Now a row is inserted with a provisional id (negative, from
events_pending_id_seq, never seen by a reader: uncommitted rows are not
visible, and readers ask for ids above one they saw). A deferred constraint
trigger, which PostgreSQL runs inside the COMMIT, takes the lock, gives each
row its id from events_id_seq and sends its NOTIFY: the lock is held for the
time the server needs to commit, and no client round trip.

Revision ID: 0018_event_ids_at_commit
Revises: 0017_batch_jobs
Create Date: 2026-12-05 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_event_ids_at_commit"
down_revision: str | None = "0017_batch_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As zoneflow.storage.events has them (a migration keeps its own copy: the
# module may change after it).
ORDER_LOCK = 0x7A66_6576
CHANNEL = "zoneflow_events"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: writers hold the write lock until they commit
    op.execute("CREATE SEQUENCE events_pending_id_seq")
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT -nextval('events_pending_id_seq')")
    op.execute(
        f"""
        CREATE FUNCTION zoneflow_number_event() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            numbered bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock({ORDER_LOCK});
            numbered := nextval('events_id_seq');
            UPDATE events SET id = numbered WHERE id = NEW.id;
            PERFORM pg_notify('{CHANNEL}', json_build_object(
                'id', numbered, 'topic', NEW.topic, 'table', NEW."table", 'key', NEW.key,
                'action', NEW.action, 'project_id', NEW.project_id, 'zone_id', NEW.zone_id
            )::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER events_numbered_at_commit AFTER INSERT ON events "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION zoneflow_number_event()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER events_numbered_at_commit ON events")
    op.execute("DROP FUNCTION zoneflow_number_event()")
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq')")
    op.execute("DROP SEQUENCE events_pending_id_seq")
