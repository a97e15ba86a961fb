"""The hot routes' lean handler (api/lean.py) answers every request exactly as FastAPI's
own handler does (LIM-1, LIM-3, USE-1, USE-2): the same status and the same body, for
good requests and for each bad one tried here:
no body, malformed JSON, JSON `null`, a list, a field of the wrong type, a missing
field, an unknown field, a text/plain content type, no content type, bytes that are not
UTF-8, an unknown action, no credential (with a good and with a malformed body), another
scheme (`Basic`), a lower-case `bearer`, an unknown key.
The same endpoints are served twice on one database: once by the app as built, once by
an app whose LeanRoute falls back to FastAPI's handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.api.app import create_app
from tabkeeper.api.lean import LeanRoute
from tabkeeper.api.routes import metering
from tabkeeper.settings import Settings
from tests.api.billing import ACME, make_organization, subscribe
from tests.api.conftest import ApiWorld, make_api_world
from tests.api.test_metering import CATALOG

CHECK = {"organization": "acme", "action": "start_session"}


@pytest.fixture
def pair(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ApiWorld, TestClient]]:
    lean = make_api_world(engine)
    imported = lean.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(lean, ACME)
    subscribe(lean, lean.member("acme", "alice"), "acme", "team")
    world = lean.world
    headers = {"Authorization": f"Bearer {lean.platform.token}"}
    assert lean.platform.http.post("/v1/check", json=CHECK, headers=headers).status_code == 200
    with monkeypatch.context() as patched:  # FastAPI builds a route's handler at first use
        patched.setattr(LeanRoute, "get_route_handler", APIRoute.get_route_handler)
        plain = TestClient(
            create_app(
                Settings(database_url="sqlite://"), engine,
                clock=world.clock, provider=world.provider, store=world.store,
            )
        )  # fmt: skip
        assert plain.post("/v1/check", json=CHECK, headers=headers).status_code == 200
    yield lean, plain


def _answer(http: TestClient, path: str, content: bytes | None, headers: dict[str, str]) -> Any:
    response = http.post(path, content=content, headers=headers)
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    if isinstance(body, dict) and "request_id" in body:  # OPS-3: each answer's own id
        assert body.pop("request_id") == response.headers["X-Request-Id"]
    return response.status_code, response.headers.get("content-type"), body


def _cases(key: str) -> list[tuple[str, bytes | None, dict[str, str]]]:
    auth = {"Authorization": f"Bearer {key}"}
    typed = {**auth, "Content-Type": "application/json"}
    good = json.dumps(CHECK).encode()
    cases: list[tuple[str, bytes | None, dict[str, str]]] = []
    for path in ("/v1/check", "/v1/sessions/start", "/v1/events"):
        cases += [
            (path, None, typed),
            (path, b"{", typed),
            (path, b"null", typed),
            (path, b"[]", typed),
            (path, b'{"organization": 5, "action": "start_session"}', typed),
            (path, b'{"action": "start_session"}', typed),
            (path, b'{"organization": "acme", "action": "start_session", "x": 1}', typed),
            (path, good, {**auth, "Content-Type": "text/plain"}),
            (path, good, auth),
            (path, b'{"organization": "\xff\xfe"}', typed),
            (path, b'{"organization": "acme", "action": "fly"}', typed),
            (path, good, {"Content-Type": "application/json"}),
            (path, b"{", {"Content-Type": "application/json"}),
            (path, good, {"Authorization": f"Basic {key}", "Content-Type": "application/json"}),
            (path, b'{"events": []}', typed),
            (path, b'{"events": [{"id": 1}]}', {"Content-Type": "application/json"}),
            (path, good, {**typed, "Authorization": "Bearer tk_unknown"}),
        ]
    cases.append(("/v1/check", good, {"Authorization": f"bearer {key}", **typed}))
    cases.append(("/v1/check", good, typed))
    return cases


def test_lean_routes_answer_bad_requests_as_fastapi_does(pair: tuple[ApiWorld, TestClient]) -> None:
    """LIM-1, LIM-3, USE-2: every case above, status, content type and body equal."""
    lean, plain = pair
    for path, content, headers in _cases(lean.platform.token):
        expected = _answer(plain, path, content, headers)
        assert _answer(lean.platform.http, path, content, headers) == expected, (path, content)


def test_good_starts_and_events_answer_as_fastapi_does(pair: tuple[ApiWorld, TestClient]) -> None:
    """LIM-3, USE-1: a session start and a batch of events, each sent to both (in a new
    conversation each, so both are admitted as new), answer the same."""
    lean, plain = pair
    headers = {"Authorization": f"Bearer {lean.platform.token}", "Content-Type": "application/json"}
    for n, http in enumerate((plain, lean.platform.http)):
        start = {"organization": "acme", "agent": "bot", "conversation": f"k{n}"}
        started = http.post("/v1/sessions/start", json=start, headers=headers)
        assert started.status_code == 200, started.text
        event = {"id": f"e{n}", "type": "message", "org": "acme", "agent": "bot",
                 "conversation": f"k{n}", "properties": {"direction": "inbound"}}  # fmt: skip
        ingested = http.post("/v1/events", json={"events": [event]}, headers=headers)
        assert ingested.json() == {"accepted": 1, "duplicates": 0, "refused": []}
        if n == 0:
            first = started.json()
        else:
            second = started.json()
    assert set(first) == set(second) and first["allowed"] == second["allowed"]


def test_the_hot_routes_take_the_lean_handler() -> None:
    """The check, session starts and events are LeanRoutes whose shape api/lean.py
    handles (so they do not fall back to FastAPI's handler unnoticed)."""
    from tabkeeper.api.lean import _plan_of

    routes = {r.path: r for r in metering.router.routes if isinstance(r, LeanRoute)}
    for path in ("/check", "/sessions/start", "/events"):
        assert _plan_of(routes[path]) is not None, path
