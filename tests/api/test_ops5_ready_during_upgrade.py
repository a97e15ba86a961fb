"""OPS-5 during an upgrade (docs/operations.md, "Upgrades"): migrations run before the
new code is rolled out, so the running release must stay ready on a database one
migration ahead of it; a database behind the code is not ready (`migrations_pending`)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import transaction
from tabkeeper.settings import Settings


def _set_version(engine: Engine, version: str) -> None:
    with transaction(engine) as session:
        session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})


def test_ops5_ready_on_a_database_ahead_of_the_code_not_behind(
    engine: Engine, database_url: str
) -> None:
    """OPS-5: at the newest migration: ready; at a revision this code has no script for
    (a newer release migrated it): ready; at an older revision: 503 migrations_pending."""
    client = TestClient(create_app(Settings(database_url=database_url), engine))
    assert client.get("/health/ready").status_code == 200
    _set_version(engine, "9999_from_a_newer_release")
    ahead = client.get("/health/ready")
    assert ahead.status_code == 200, ahead.text
    _set_version(engine, "0001")
    behind = client.get("/health/ready")
    assert behind.status_code == 503
    assert behind.json()["code"] == "migrations_pending"
    assert behind.headers["Retry-After"] == "1"
