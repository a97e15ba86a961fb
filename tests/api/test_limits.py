"""OPS-4: bodies are capped (413 before the body is read whole), JSON nested too deep is
refused (400, never a 500), and each API key and portal session has a rate limit (429
with Retry-After); OPS-5: /health/live and /health/ready. The memory a refused body costs
a real server is measured in tests/integration/test_limits_memory.py.

Bad inputs tried: a Content-Length over the cap (6 MiB and 50 MB claimed), a body over the
cap sent in pieces without a length, JSON arrays and objects nested 3,000 and 65 deep, a
too-deep body with a form content type (not JSON: left to the app), brackets inside JSON
strings (not nesting), and one credential past its burst. Each refusal changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from tabkeeper.api.app import create_app
from tabkeeper.api.limits import Draining, RequestLimits, TokenBuckets, json_depth
from tabkeeper.db.engine import transaction
from tabkeeper.services.access import create_api_key
from tabkeeper.settings import Settings
from tests.browser import run_async
from tests.integration.conftest import World, make_world

MiB = 1024 * 1024


def _app(engine: Engine, **settings: Any) -> tuple[World, TestClient, str]:
    world = make_world(engine)
    with transaction(engine) as session:
        _, key = create_api_key(session, world.platform_id, "tests", world.clock.now())
    app = create_app(
        Settings(database_url="sqlite://", **settings), engine,
        clock=world.clock, provider=world.provider, store=world.store,
    )  # fmt: skip
    return world, TestClient(app), key


def _organizations(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM organizations")).scalar_one())


def test_ops4_a_body_over_the_cap_answers_413_problem_json(engine: Engine) -> None:
    """OPS-4: 6 MiB against the default 5 MiB cap: 413 `body_too_large`, nothing made."""
    _world, client, key = _app(engine, rate_limits=False)
    before = _organizations(engine)
    body = b'{"code": "big", "name": "' + b"x" * (6 * MiB) + b'"}'
    answer = client.post(
        "/v1/organizations",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "body_too_large"
    assert _organizations(engine) == before
    ok = client.post(
        "/v1/organizations", json={"code": "small"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert ok.status_code == 201, ok.text


def test_ops4_json_nested_3000_deep_answers_400_not_500(engine: Engine) -> None:
    """OPS-4: 3,000 levels of arrays, and of objects, answer 400 `json_too_deep` (they
    answered 500: the JSON parser's RecursionError); 65 levels too (the cap is 64)."""
    _world, client, key = _app(engine, rate_limits=False)
    before = _organizations(engine)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [
        "[" * 3000 + "]" * 3000,
        '{"a":' * 3000 + "1" + "}" * 3000,
        '{"code": "deep", "metadata": ' + "[" * 65 + "]" * 65 + "}",
    ]
    for body in bodies:
        answer = client.post("/v1/organizations", content=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "json_too_deep"
    assert _organizations(engine) == before
    # 64 levels, and brackets inside strings, are not refused by the depth check
    for body in ("[" * 64 + "]" * 64, json.dumps({"code": "[" * 3000})):
        answer = client.post("/v1/organizations", content=body, headers=headers)
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["code"] != "json_too_deep"


def test_ops4_json_depth_counts_nesting_not_brackets_in_strings() -> None:
    assert json_depth(b"[[[]]]", 2) == 3
    assert json_depth(b'{"a": [1, {"b": []}]}', 2) == 3
    assert json_depth(b'["[[[[", "\\"[[[["]', 2) <= 2
    assert json_depth(b"[" * 10 + b"]" * 10, 64) <= 64


def test_ops4_a_streamed_body_is_refused_as_soon_as_it_passes_the_cap() -> None:
    """OPS-4: a body without Content-Length is counted as it arrives: after the piece
    that passes the cap nothing more is read, and the app never runs."""
    settings = Settings(database_url="sqlite://", max_body_bytes=4096, rate_limits=False)
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    middleware = RequestLimits(app, settings, Draining())
    pieces = 100
    read: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": len(read) < pieces}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "headers": [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")],
    }
    run_async(middleware(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(read) == 5  # 5 KiB read, then refused: 95 pieces never read
    assert not reached


def test_ops4_rate_limit_per_api_key_answers_429_with_retry_after(engine: Engine) -> None:
    """OPS-4: a key past its burst gets 429 `rate_limited` with Retry-After; another key
    and a member's portal session keep their own buckets."""
    world, client, key = _app(engine, rate_limits=True, api_key_rate=0.5, api_key_burst=3)
    with transaction(engine) as session:
        _, other = create_api_key(session, world.platform_id, "other", world.clock.now())
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        assert client.get("/v1/organizations", headers=auth).status_code == 200
    limited = client.get("/v1/organizations", headers=auth)
    assert limited.status_code == 429, limited.text
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "2"  # a token a 2 seconds
    other_auth = {"Authorization": f"Bearer {other}"}
    assert client.get("/v1/organizations", headers=other_auth).status_code == 200


def test_ops4_rate_limit_per_portal_session(engine: Engine) -> None:
    """OPS-4: a member's portal session (as a bearer token, or as the billing tab's
    cookie) has its own, smaller bucket."""
    world, client, key = _app(
        engine, rate_limits=True, portal_session_rate=1, portal_session_burst=2
    )
    world.organization("acme", members={"ann": "owner"})
    started = client.post(
        "/v1/portal_sessions",
        json={"organization": "acme", "member": "ann"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert started.status_code == 201, started.text
    token = started.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/organizations/acme", headers=auth).status_code == 200
    assert client.get("/v1/organizations/acme", headers=auth).status_code == 200
    limited = client.get("/v1/organizations/acme", headers=auth)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    by_cookie = client.get("/portal/", headers={"Cookie": f"tk_portal={token}"})
    assert by_cookie.status_code == 429
    assert client.get("/v1/organizations", headers={"Authorization": f"Bearer {key}"}).is_success


def test_ops4_token_buckets_refill_at_their_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2)
    assert buckets.take(b"k", 0.0) == 0.0
    assert buckets.take(b"k", 0.0) == 0.0
    assert buckets.take(b"k", 0.0) == pytest.approx(0.5)
    assert buckets.take(b"k", 0.5) == 0.0  # one token back after half a second
    assert buckets.take(b"other", 0.5) == 0.0


def test_ops5_health_live_and_ready(engine: Engine) -> None:
    """OPS-5: live and ready answer 200 on a migrated database; ready answers 503 with
    Retry-After while draining; /health is as before."""
    _world, client, _key = _app(engine)
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["migrations"] == "current"
    assert client.get("/health").json()["status"] == "ok"
    client.app.state.draining.start()  # type: ignore[attr-defined]
    draining = client.get("/health/ready")
    assert draining.status_code == 503
    assert draining.headers["Retry-After"] == "1"
    assert draining.json()["code"] == "draining"
    assert client.get("/health/live").status_code == 200


def test_ops5_ready_answers_503_on_a_database_never_migrated(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = create_engine(url)
    client = TestClient(create_app(Settings(database_url=url), engine))
    answer = client.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["code"] == "migrations_pending"
    assert client.get("/health/live").status_code == 200


def test_ops5_sigterm_marks_the_process_draining_then_calls_the_server_handler() -> None:
    """OPS-5: the handler chained at lifespan startup (before uvicorn's own) makes
    /health/ready answer 503 from the moment SIGTERM arrives, and still stops the server."""
    import os
    import signal

    called: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, _frame: called.append(signum))
    try:
        draining = Draining()
        draining.on_sigterm()
        assert not draining
        os.kill(os.getpid(), signal.SIGTERM)
        assert draining
        assert called == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


def test_ops4_events_keep_their_own_reader_of_deep_json(engine: Engine) -> None:
    """OPS-4 with USE-2: POST /v1/events reads any depth itself and refuses a too-deep
    event by its index (tests/api/test_metering_batches.py), so the door leaves it be:
    a 3,000-deep batch answers 422 there, never 400 `json_too_deep` and never 500."""
    _world, client, key = _app(engine, rate_limits=False)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answer = client.post("/v1/events", content="[" * 3000 + "]" * 3000, headers=headers)
    assert answer.status_code == 422, answer.text
