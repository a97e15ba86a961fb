"""Webhook endpoints and their deliveries through the API (NOT-1, NOT-2): register, sign,
list every try, replay with the same webhook-id; platform key only (ACL-3)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tabkeeper.clock import SystemClock
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.settings import Settings
from tests.api.conftest import ApiWorld, make_api_world
from tests.integration.notify_servers import webhook_receiver

LOCAL = Settings(database_url="sqlite://", webhook_allowed_hosts="127.0.0.1")
"""The receivers run on 127.0.0.1: allowed by name (notify/addresses.py)."""


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    return make_api_world(engine, app_settings=LOCAL)


def _dispatch(api: ApiWorld) -> int:
    dispatcher = Dispatcher(api.world.engine, api.world.clock, LOCAL, wall_clock=SystemClock())
    return dispatcher.tick()


def test_endpoints_receive_signed_notices_and_deliveries_replay(api: ApiWorld) -> None:
    """NOT-1: each notice reaches the endpoint once, signed (verified with the
    standardwebhooks library); NOT-2: the deliveries are listed and one is replayed with
    its webhook-id."""
    with webhook_receiver() as receiver:
        made = api.platform.post("/v1/webhook_endpoints", {"url": receiver.url})
        assert made.status_code == 201, made.text
        endpoint = made.json()
        assert endpoint["secret"].startswith("whsec_")
        receiver.secret = endpoint["secret"]
        assert api.platform.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()["secret"] is None
        api.platform.post("/v1/organizations", {"code": "acme"})
        api.world.subscribe("acme")
        assert _dispatch(api) >= 2
        assert receiver.posts and all(post.verified for post in receiver.posts)
        kinds = [post.document()["type"] for post in receiver.posts]
        assert kinds.count("invoice.issued") == 1
        assert _dispatch(api) == 0  # nothing twice
        path = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"
        deliveries = api.platform.get(path).json()["data"]
        assert {d["status"] for d in deliveries} == {"delivered"}
        first = deliveries[0]
        replayed = api.platform.post(f"{path}/{first['id']}/replay")
        assert replayed.status_code == 200
        assert replayed.json()["status"] == "pending"
        posts_before = len(receiver.posts)
        assert _dispatch(api) == 1
        assert len(receiver.posts) == posts_before + 1
        assert receiver.posts[-1].webhook_id == first["message_id"]


def test_endpoints_switch_off_and_are_the_platforms_alone(api: ApiWorld) -> None:
    """ACL-3: members never manage webhooks; another platform's ids are 404. Bad inputs
    tried: a non-http URL, a URL with credentials, an unknown status filter."""
    made = api.platform.post("/v1/webhook_endpoints", {"url": "https://hooks.test/in"}).json()
    path = f"/v1/webhook_endpoints/{made['id']}"
    assert api.platform.post(f"{path}/disable").json()["enabled"] is False
    assert api.platform.post(f"{path}/enable").json()["enabled"] is True
    listed = api.platform.get("/v1/webhook_endpoints").json()
    assert [e["id"] for e in listed["data"]] == [made["id"]]
    api.platform.post("/v1/organizations", {"code": "acme"})
    owner = api.member("acme", "owner")
    assert owner.get("/v1/webhook_endpoints").status_code == 403
    assert owner.post("/v1/webhook_endpoints", {"url": "https://x.test"}).status_code == 403
    for url in ("ftp://hooks.test/in", "https://user:pw@hooks.test/in", "not a url"):
        refused = api.platform.post("/v1/webhook_endpoints", {"url": url})
        assert refused.status_code in (400, 422), url
        assert refused.headers["content-type"] == "application/problem+json"
    assert api.platform.get(f"{path}/deliveries", status="lost").status_code == 422
    assert api.platform.get("/v1/webhook_endpoints/999999").status_code == 404
    assert api.platform.delete(path).status_code == 200
    assert api.platform.get(path).status_code == 404
