"""Alembic environment: runs zoneflow's migrations on the connection it is given."""

from alembic import context

from zoneflow.storage import models

config = context.config
connection = config.attributes.get("connection")


def run() -> None:
    if connection is None:
        raise RuntimeError("zoneflow migrations run through 'zoneflow db sync'")
    context.configure(
        connection=connection,
        target_metadata=models.Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table="zoneflow_alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
