"""Alembic environment: runs online against the engine that tabkeeper passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from tabkeeper.db.schema import METADATA

engine = context.config.attributes["engine"]
if not isinstance(engine, Engine):  # pragma: no cover - set by tabkeeper.db.migrate
    raise RuntimeError("run migrations through `tabkeeper migrate`")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
