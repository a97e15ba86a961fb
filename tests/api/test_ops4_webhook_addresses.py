"""OPS-4, ACL-3: webhook URLs may not point into the server's own network.

Found: 127.0.0.1, localhost, [::1], 0.0.0.0, `2130706433` and `127.1` were accepted as
endpoint URLs, signed posts were delivered there, and the delivery record showed the
internal answer. Now every address the host resolves to must be public, when the
endpoint is made (400 `webhook_address_refused`, nothing made) and again before each
delivery (a failed try that never connected: no status code, no answer on record).
TABKEEPER_WEBHOOK_ALLOWED_HOSTS allows named hosts for local testing.

No test here sends anything to a refused address: the refusals come before any connection
(numeric hosts and localhost resolve without DNS; other names through a stand-in resolver).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tabkeeper.clock import SystemClock
from tabkeeper.notify.addresses import AddressRefused, check_destination, is_public, resolve
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.settings import Settings
from tests.api.conftest import ApiWorld, make_api_world
from tests.integration.notify_servers import webhook_receiver

REFUSED_URLS = [
    "http://127.0.0.1/hooks",
    "http://localhost:8000/hooks",
    "http://LOCALHOST./hooks",
    "http://[::1]/hooks",
    "http://0.0.0.0/hooks",
    "http://2130706433/hooks",
    "http://127.1/hooks",
    "http://0x7f000001/hooks",
    "http://10.0.0.1/hooks",
    "http://172.16.0.1/hooks",
    "http://172.31.255.255/hooks",
    "http://192.168.1.1/hooks",
    "http://169.254.169.254/latest/meta-data",
    "http://[fc00::1]/hooks",
    "http://[fd12:3456::1]/hooks",
    "http://[fe80::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[::ffff:10.0.0.1]/hooks",
    "http://[::]/hooks",
    "http://100.64.0.1/hooks",
    "http://224.0.0.1/hooks",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_ops4_webhook_urls_into_the_own_network_are_refused(api: ApiWorld, url: str) -> None:
    answer = api.platform.post("/v1/webhook_endpoints", {"url": url})
    assert answer.status_code == 400, (url, answer.text)
    assert answer.json()["code"] == "webhook_address_refused"
    assert api.platform.get("/v1/webhook_endpoints").json()["data"] == []


def test_ops4_public_addresses_and_unresolved_names_are_taken(api: ApiWorld) -> None:
    for url in ("https://93.184.215.14/hooks", "https://hooks.test/in"):
        assert api.platform.post("/v1/webhook_endpoints", {"url": url}).status_code == 201


def test_ops4_names_resolving_inside_are_refused_at_creation_and_delivery() -> None:
    """A name is judged by what it resolves to, every time (DNS may change)."""
    inside = {"hooks.example": ["93.184.215.14", "10.1.2.3"]}
    with pytest.raises(AddressRefused):
        check_destination("https://hooks.example/x", resolver=inside.__getitem__)
    check_destination("https://hooks.example/x", {"hooks.example"}, inside.__getitem__)
    check_destination("https://public.example/x", resolver=lambda _h: ["93.184.215.14"])
    assert resolve("2130706433") == ["127.0.0.1"] or set(resolve("2130706433")) == {"127.0.0.1"}
    assert not is_public("::ffff:192.168.0.1") and is_public("2606:4700::1111")


def test_ops4_allowed_hosts_setting_is_read_by_name() -> None:
    settings = Settings(webhook_allowed_hosts=" 127.0.0.1, LocalHost. ,[::1]")
    assert settings.webhook_hosts == {"127.0.0.1", "localhost", "::1"}
    assert Settings().webhook_hosts == frozenset()


def test_ops4_delivery_to_an_address_refused_since_is_never_sent(engine: Engine) -> None:
    """Made while 127.0.0.1 was allowed; the dispatcher, without the setting, refuses it
    before connecting: the receiver gets nothing, the record has no status and no body."""
    local = Settings(database_url="sqlite://", webhook_allowed_hosts="127.0.0.1")
    api = make_api_world(engine, app_settings=local)
    with webhook_receiver() as receiver:
        made = api.platform.post("/v1/webhook_endpoints", {"url": receiver.url})
        assert made.status_code == 201, made.text
        api.platform.post("/v1/organizations", {"code": "acme"})
        api.world.subscribe("acme")
        dispatcher = Dispatcher(
            api.world.engine, api.world.clock, Settings(), wall_clock=SystemClock()
        )
        assert dispatcher.tick() >= 1
        assert receiver.posts == []
    path = f"/v1/webhook_endpoints/{made.json()['id']}/deliveries"
    deliveries = api.platform.get(path).json()["data"]
    assert deliveries and {d["status"] for d in deliveries} == {"pending"}
    for delivery in deliveries:
        assert delivery["last_status_code"] is None
        assert "not a public address" in delivery["last_error"]
