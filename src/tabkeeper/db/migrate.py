"""Alembic migrations, applied by `tabkeeper migrate` and at `serve` start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


_heads: list[str] = []
_known: set[str] = set()


def migrations_current(engine: Engine) -> bool:
    """The database answers and is at the newest migration this code knows, or past it
    (OPS-5, /health/ready). Past it: the database carries a revision this code has no
    script for, which an upgrade's `tabkeeper migrate` ran before the new code was
    rolled out (docs/operations.md, "Upgrades"); the running release keeps serving then.
    Behind it (a revision this code knows, not the newest): not current. The revisions
    are read from the migration scripts once per process; then one short query. Raises
    sqlalchemy's DBAPIError when the database cannot be reached."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect, text

    if not _heads:
        scripts = ScriptDirectory.from_config(alembic_config(engine))
        _known.update(script.revision for script in scripts.walk_revisions())
        _heads.extend(scripts.get_heads())
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False  # never migrated
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        versions = sorted(found)
    if versions == sorted(_heads):
        return True
    return bool(versions) and not set(versions) & _known  # newer than this code
