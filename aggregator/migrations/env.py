"""Alembic environment: always run with a connection handed in by aggregator.db.migrate."""

from alembic import context

from aggregator.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic's own CLI
    raise SystemExit("run migrations with `hustings init`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
