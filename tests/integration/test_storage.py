"""Storage basics on SQLite and PostgreSQL: migrations, UTC times, transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import StatementError

from tabkeeper.db.engine import is_sqlite, make_engine, normalize_url, transaction
from tabkeeper.db.migrate import downgrade, upgrade
from tabkeeper.db.tables import Platform
from tabkeeper.domain.errors import InvalidInput

T0 = datetime(2026, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)


def test_migrations_create_the_tables(engine: Engine) -> None:
    assert "platforms" in inspect(engine).get_table_names()


def test_migrations_go_down_and_up_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert "platforms" not in inspect(engine).get_table_names()
    upgrade(engine)
    upgrade(engine)  # a second run changes nothing
    assert "platforms" in inspect(engine).get_table_names()


def test_times_come_back_as_the_same_utc_instant(engine: Engine) -> None:
    offset = T0.astimezone(timezone(timedelta(hours=-5)))
    with transaction(engine) as session:
        session.add(Platform(code="acme", name="Acme", created_at=offset))
    with transaction(engine) as session:
        stored = session.scalars(select(Platform)).one()
    assert stored.created_at == T0
    assert stored.created_at.tzinfo == UTC


def test_naive_times_are_refused_and_nothing_is_written(engine: Engine) -> None:
    """Bad input tried: a naive datetime. The transaction rolls back whole."""
    with pytest.raises(StatementError) as raised, transaction(engine) as session:
        session.add(Platform(code="ok", name="Ok", created_at=T0))
        session.add(Platform(code="naive", name="Naive", created_at=datetime(2026, 1, 1)))
        session.flush()
    assert isinstance(raised.value.orig, InvalidInput)
    assert "no timezone" in str(raised.value.orig)
    with transaction(engine) as session:
        assert session.scalars(select(Platform)).all() == []


def test_a_failed_transaction_rolls_back(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(engine) as session:
        session.add(Platform(code="gone", name="Gone", created_at=T0))
        session.flush()
        raise RuntimeError("boom")
    with transaction(engine) as session:
        assert session.scalars(select(Platform)).all() == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("SQLite only")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_urls() -> None:
    assert normalize_url("postgresql://u:p@h:5/d") == "postgresql+psycopg://u:p@h:5/d"
    assert normalize_url("sqlite:///var/x.db") == "sqlite:///var/x.db"
    memory = make_engine("sqlite://")
    assert is_sqlite(memory)
    upgrade(memory)
    assert "platforms" in inspect(memory).get_table_names()


def test_migrations_build_exactly_the_schema_of_the_tables(engine: Engine) -> None:
    """The migrated database has every table, column, index and constraint the code
    declares, on SQLite and PostgreSQL (nothing drifts between the two)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tabkeeper.db.schema import METADATA

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), METADATA)
    assert differences == []


def test_a_copied_template_is_the_database_a_migration_builds(
    engine: Engine, tmp_path: Path
) -> None:
    """The test run copies one migrated SQLite file per test (tests/conftest.py): the copy
    has the schema, the Alembic revision and the settings of a database migrated on its
    own, and nothing but the file was needed (no -wal or -shm beside it).

    The schema is compared as SQLite stores it, the text of each CREATE statement: the
    migrations must write the same text every time (see migration 0009, whose rebuild of
    `events` once wrote its constraints in an order that changed from run to run)."""
    if not is_sqlite(engine):
        pytest.skip("SQLite only")
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    upgrade(fresh)

    def described(of: Engine) -> dict[str, object]:
        with of.connect() as connection:
            schema = {
                f"{kind} {name}": sql
                for kind, name, sql in connection.exec_driver_sql(
                    "SELECT type, name, sql FROM sqlite_master"
                )
            }
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            settings = [
                connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "user_version")
            ]
            return {"revision": revision.all(), "settings": settings, **schema}

    try:
        copied, migrated = described(engine), described(fresh)
    finally:
        fresh.dispose()
    assert copied == migrated
