"""Shared test fixtures.

Hypothesis runs without deadlines: speed is measured in bench/, never asserted here.

Database tests take the `engine` fixture: a freshly migrated database per test, SQLite by
default, or PostgreSQL when TABKEEPER_TEST_DATABASE_URL points at a server (as
`make test` does through scripts/with-postgres). Tests that use it are marked `db`, so
`pytest -m db` runs exactly them. Alembic runs once per test run, into a template: on
PostgreSQL each test's database is created from it, on SQLite its file is copied.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tests.browser import browser  # noqa: F401 (one browser for tests/portal and tests/stripe_fake)

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")

# The per-credential rate limits (OPS-4) are off in tests that hammer the API with one key
# (schemathesis, many clients, live servers inherit it); tests/api/test_limits.py turns
# them on in its own Settings.
os.environ.setdefault("TABKEEPER_RATE_LIMITS", "false")

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
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
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


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """On SQLite: a database file migrated once and closed cleanly, copied for each test.

    The file is in WAL mode (make_engine sets it on every connect, as it does on the
    copies). Closing its last connection checkpoints the WAL into the file and removes
    the -wal and -shm files, so the file alone is the whole database: checked below."""
    path = tmp_path_factory.mktemp("template") / "tabkeeper.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the template database was not closed cleanly: {leftovers}"
    return path


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _postgres_template: str | None
) -> Iterator[str]:
    """The URL of an empty, migrated database of its own for this test."""
    if _postgres_template is None:
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "tabkeeper.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    assert POSTGRES_URL
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
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
