"""Shared test fixtures.

Hypothesis runs without deadlines: speed is measured in bench/, never asserted here.

Database tests take the `engine` fixture: a freshly migrated database per test, SQLite by
default, or PostgreSQL when TABKEEPER_TEST_DATABASE_URL points at a server (as
`make test` does through scripts/with-postgres). Tests that use it are marked `db`, so
`pytest -m db` runs exactly them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")

POSTGRES_URL = os.environ.get("TABKEEPER_TEST_DATABASE_URL")
DB_FIXTURES = {"engine", "database_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + POSTGRES_URL if POSTGRES_URL else 'SQLite'}"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str | None]:
    """On PostgreSQL: a database migrated once, the template of each test's database."""
    if not POSTGRES_URL:
        yield None
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    template = f"tk_template_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{template}"'))
    migrated = make_engine(make_url(POSTGRES_URL).set(database=template).render_as_string(False))
    upgrade(migrated)
    migrated.dispose()
    yield template
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{template}"'))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, _postgres_template: str | None) -> Iterator[str]:
    """The URL of an empty, migrated database of its own for this test."""
    if _postgres_template is None:
        url = f"sqlite:///{tmp_path / 'tabkeeper.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    assert POSTGRES_URL
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"tk_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_postgres_template}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
