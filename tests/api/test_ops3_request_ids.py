"""OPS-3: every answer carries a request id (the client's `X-Request-Id` when usable, else
a made one), problem+json bodies too, and the request log writes one JSON line per
request with that id; no credential reaches the log.

Bad request ids tried: too long (129 characters), with a space, with a quote, empty:
each is replaced by a made id (and the request is answered as without it)."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.api.app import create_app
from tabkeeper.logs import JsonFormatter
from tabkeeper.settings import Settings
from tests.api.conftest import ApiWorld, make_api_world

LOGGED = Settings(database_url="sqlite://", request_log=True)


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    return make_api_world(engine, app_settings=LOGGED)


def test_ops3_every_answer_carries_the_request_id(api: ApiWorld) -> None:
    """OPS-3: the client's id comes back; without one (or with an unusable one) a fresh
    one is made for each request; problem+json answers (404, 401, 422, 413 at the door)
    carry it in the body as well."""
    given = api.platform.http.get("/health/live", headers={"X-Request-Id": "abc-123.x:y_z"})
    assert given.headers["X-Request-Id"] == "abc-123.x:y_z"
    made = {api.platform.http.get("/health/live").headers["X-Request-Id"] for _ in range(3)}
    assert len(made) == 3 and all(len(found) == 16 for found in made)
    for bad in ("a" * 129, "a b", 'a"b', ""):
        answer = api.platform.http.get("/health/live", headers={"X-Request-Id": bad})
        assert answer.status_code == 200
        assert answer.headers["X-Request-Id"] != bad and len(answer.headers["X-Request-Id"]) == 16
    problems = [
        api.platform.get("/v1/organizations/nobody"),  # 404
        api.platform.as_("tk_forged").get("/v1/organizations"),  # 401
        api.platform.post("/v1/check", {"organization": 5}),  # 422
        api.platform.http.post(
            "/v1/check", content=b"x" * (6 * 1024 * 1024), headers={"X-Request-Id": "big-1"}
        ),  # 413, answered before the app
    ]
    for answer in problems:
        assert answer.status_code >= 400
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["request_id"] == answer.headers["X-Request-Id"]
        assert int(answer.headers["content-length"]) == len(answer.content)
    assert problems[-1].json()["request_id"] == "big-1"


def test_ops3_a_json_log_line_per_request_carries_its_id(
    api: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """OPS-3, OPS-4: one JSON line per request (method, route template, redacted path,
    status, duration, the id the answer carried); the API key and a portal token in the
    query string never appear in it."""
    caplog.set_level(logging.INFO, logger="tabkeeper.request")
    answer = api.platform.get("/v1/organizations/nobody")
    portal = api.platform.http.get("/portal/enter?token=ps_secret_value&next=x")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "tabkeeper.request"]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["request_id"] == answer.headers["X-Request-Id"]
    assert first["method"] == "GET" and first["status"] == 404
    assert first["route"] == "/v1/organizations/{code}"
    assert first["path"] == "/v1/organizations/nobody"
    assert first["duration_ms"] >= 0 and first["level"] == "info"
    assert second["request_id"] == portal.headers["X-Request-Id"]
    assert second["path"] == "/portal/enter?token=[redacted]&next=x"
    text = "\n".join(lines)
    assert api.platform.token not in text and "ps_secret_value" not in text


def test_ops3_no_request_log_unless_asked(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """OPS-3: the request log is off by default (`serve --access-log` turns it on); the
    id is returned either way."""
    caplog.set_level(logging.INFO, logger="tabkeeper.request")
    client = TestClient(create_app(Settings(database_url="sqlite://"), engine))
    assert client.get("/health/live").headers["X-Request-Id"]
    assert not [r for r in caplog.records if r.name == "tabkeeper.request"]
