"""A PostgreSQL connection dropped by the server (a restart, a failover, an idle
timeout) costs one 503 `database_unavailable` with Retry-After, never a 500 and never a
second failure: the pool is thrown away and the retry gets a fresh connection. (The API
sends no ping before each use of a pooled connection: that would be a round trip per
request on the hot path.)"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.api.conftest import make_api_world


def test_dropped_connections_cost_one_retryable_answer(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops its connections: PostgreSQL")
    api = make_api_world(engine)
    api.world.organization("acme")
    assert api.platform.get("/v1/organizations").status_code == 200
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    assert dropped
    first = api.platform.get("/v1/organizations")
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "database_unavailable"
    assert first.headers["Retry-After"] == "1"
    again = api.platform.get("/v1/organizations")
    assert again.status_code == 200, again.text
    assert [o["code"] for o in again.json()["data"]] == ["acme"]
