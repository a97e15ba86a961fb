"""The API through its ASGI app, on the test database (SQLite, and PostgreSQL under
`make test`), with the billing world of tests/integration/conftest.py behind it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import transaction
from tabkeeper.services.access import create_api_key
from tabkeeper.settings import Settings
from tests.integration.conftest import World, make_world


@dataclass
class Client:
    """A TestClient that sends one credential (an API key or a portal session)."""

    http: TestClient
    token: str

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, params=params or None, headers=self._headers(None))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.http.post(
            path, json=body if body is not None else {}, headers=self._headers(headers)
        )

    def put(self, path: str, body: Any) -> Any:
        return self.http.put(path, json=body, headers=self._headers(None))

    def delete(self, path: str) -> Any:
        return self.http.delete(path, headers=self._headers(None))

    def as_(self, token: str) -> Client:
        return Client(self.http, token)


@dataclass
class ApiWorld:
    world: World
    platform: Client

    def member(self, organization: str, member: str) -> Client:
        response = self.platform.post(
            "/v1/portal_sessions", {"organization": organization, "member": member}
        )
        assert response.status_code == 201, response.text
        return self.platform.as_(response.json()["token"])


def make_api_world(
    engine: Engine, settings: dict[str, Any] | None = None, app_settings: Settings | None = None
) -> ApiWorld:
    world = make_world(engine, settings)
    with transaction(engine) as session:
        _, key = create_api_key(session, world.platform_id, "tests", world.clock.now())
    app = create_app(
        app_settings or Settings(database_url="sqlite://"), engine,
        clock=world.clock, provider=world.provider, store=world.store,
    )  # fmt: skip
    return ApiWorld(world, Client(TestClient(app), key))


@pytest.fixture
def api(engine: Engine) -> Iterator[ApiWorld]:
    yield make_api_world(engine)


@pytest.fixture
def billing_api(engine: Engine) -> Iterator[ApiWorld]:
    """The API world with tests/api/billing.py's catalog (teams of three fit every plan)."""
    from tests.api.billing import make_billing_world

    yield make_billing_world(engine)
