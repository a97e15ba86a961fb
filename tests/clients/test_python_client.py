"""The Python client (clients/python, tabkeeper-client) against a live `tabkeeper serve`
on 127.0.0.1, on SQLite and PostgreSQL (INT-1..3, issue 14): an organization made and
subscribed through the sandbox's hosted checkout; 10,000 events through the buffered
`events.track`, one batch's answer lost and the batch sent again, every event counted
once; the check and `sessions.start`; a credits consumption whose answer is lost,
retried with the same Idempotency-Key and taken once; the `invoice.paid` webhook received
and verified (a changed body, another secret and an old timestamp refused).
Each test runs its own server: about 5 s on SQLite."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tabkeeper_client import ApiError, AsyncClient, Client, WebhookVerificationError, verify

from tests.browser import run_async
from tests.clients.conftest import Live
from tests.clients.lossy import AsyncLossyTransport, LossyTransport

EVENTS = 10_000


def subscribe(client: Client, live: Live, organization: str) -> None:
    """A new organization, paid for with the sandbox's good card on its hosted checkout."""
    made = client.organizations.create(
        {"code": organization, "members": [{"code": "owner", "role": "owner"}]}
    )
    assert made["code"] == organization
    opened = client.subscriptions.create({"organization": organization, "plan": "pro"})
    checkout = opened["checkout"]
    paid = httpx.post(
        f"{live.base_url}/sandbox/checkout/{checkout['id']}", data={"card": "card_ok"}
    )
    assert paid.status_code in (200, 303), paid.text
    page = client.subscriptions.list(organization=organization)
    assert [s["state"] for s in page["data"]] == ["active"]
    client.agents.create({"organization": organization, "code": "bot"})


def calls_used(client: Client, organization: str) -> str:
    return client.usage.get(organization=organization)["meters"]["calls"]["used"]


def test_python_client_journey_int_1(live: Live) -> None:
    """INT-1, LIM-3, CRD-1, NOT-1: organization, sandbox subscription, check,
    sessions.start and credits.consume with lost answers, and a verified webhook."""
    transport = LossyTransport(
        {("POST", "/v1/sessions/start", 1), ("POST", "/v1/credits/consume", 1)}
    )
    with Client(live.key, live.base_url, transport=transport) as client:
        endpoint = client.webhook_endpoints.create(
            {"url": live.webhook_url, "kinds": ["invoice.paid"]}
        )
        secret = endpoint["secret"]
        assert secret is not None and secret.startswith("whsec_")
        subscribe(client, live, "acme")

        decision = client.check({"organization": "acme", "action": "start_session"})
        assert decision["allowed"] is True

        # The first answer of sessions.start is lost: the retry carries the same key, so
        # the session is reserved once.
        started = client.sessions.start(
            {"organization": "acme", "agent": "bot", "conversation": "c1"}
        )
        assert started["allowed"] is True
        assert transport.lost == [("POST", "/v1/sessions/start", 1)]
        assert transport.sent[("POST", "/v1/sessions/start")] == 2
        sessions = client.usage.get(organization="acme")["meters"]["sessions"]
        assert sessions["used"] == "1"

        # credits.consume: 100 included credits; 2 uses of 3 credits, answer lost, retried.
        before = client.credits.get(organization="acme")["balance"]
        used = client.credits.consume(
            {"organization": "acme", "feature": "smart_reply", "id": "use-1", "quantity": 2}
        )
        assert transport.sent[("POST", "/v1/credits/consume")] == 2
        assert (used["credits"], used["balance"]) == (6, before - 6)
        assert client.credits.get(organization="acme")["balance"] == before - 6
        again = client.credits.consume(
            {"organization": "acme", "feature": "smart_reply", "id": "use-1", "quantity": 2}
        )
        assert again["balance"] == before - 6
        assert client.credits.get(organization="acme")["balance"] == before - 6

        # Bad input is an ApiError with the server's code, sent once (a POST without a key).
        with pytest.raises(ApiError) as refused:
            client.credits.consume(
                {"organization": "acme", "feature": "no_such_feature", "id": "use-2"}
            )
        assert (refused.value.status, refused.value.code) == (400, "unknown_feature")

    # The invoice.paid webhook of the checkout, signed with the endpoint's secret.
    deliveries = live.received.wait_for(1)
    assert deliveries, "no webhook arrived"
    headers, body = deliveries[0]
    event: dict[str, Any] = client.webhooks.verify(headers, body, secret)
    assert event["type"] == "invoice.paid" and event["api_version"] == "v1"
    assert event["data"]["object"]["status"] == "paid"
    assert event["data"]["organization"] == "acme"
    with pytest.raises(WebhookVerificationError):
        verify(headers, body.replace(b'"paid"', b'"void"'), secret)
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, secret, now=int(headers["webhook-timestamp"]) + 600)


def test_python_client_tracks_10000_events_counted_once_use_1(live: Live) -> None:
    """USE-1: 10,000 events through the buffered `events.track`: full batches of 1,000
    sent as they fill, one explicit flush, the rest on close; the second batch's answer
    is lost and the batch sent again: every event counted once."""
    transport = LossyTransport({("POST", "/v1/events", 2)})
    with Client(live.key, live.base_url, transport=transport, flush_interval=3600) as client:
        subscribe(client, live, "acme")
        for n in range(2_500):
            client.events.track(
                "call.ended", "acme", agent="bot", properties={"duration_seconds": n % 60}
            )
        assert client.events.buffer.pending == 500  # 1,000 and 2,000 went as they filled
        client.events.flush()  # the 500 left, and waits for every answer
        assert client.events.buffer.stats.batches == 3
        for n in range(2_500, EVENTS):
            client.events.track(
                "call.ended", "acme", agent="bot", properties={"duration_seconds": n % 60}
            )
        assert client.events.buffer.pending == 500  # they wait for close
    stats = client.events.buffer.stats
    assert transport.lost == [("POST", "/v1/events", 2)]
    assert (stats.sent, stats.batches, stats.refused) == (EVENTS, 11, [])
    # The lost batch was stored by its first try: its retry answered 1,000 duplicates.
    assert (stats.accepted, stats.duplicates) == (EVENTS - 1_000, 1_000)
    with Client(live.key, live.base_url) as reader:
        assert calls_used(reader, "acme") == str(EVENTS)


def test_async_client_int_1(live: Live) -> None:
    """INT-1, USE-1, LIM-3, CRD-1 with the async client: 10,000 events tracked (a lost
    answer retried), the check, a session start and a consumption retried once taken."""

    async def main() -> None:
        with Client(live.key, live.base_url) as setup:
            subscribe(setup, live, "acme")
        transport = AsyncLossyTransport(
            {("POST", "/v1/events", 3), ("POST", "/v1/credits/consume", 1)}
        )
        async with AsyncClient(live.key, live.base_url, transport=transport) as client:
            for n in range(EVENTS):
                await client.events.track(
                    "call.ended", "acme", agent="bot", properties={"duration_seconds": n % 60}
                )
            decision = await client.check({"organization": "acme", "action": "start_session"})
            assert decision["allowed"] is True
            started = await client.sessions.start(
                {"organization": "acme", "agent": "bot", "conversation": "c1"}
            )
            assert started["allowed"] is True
            used = await client.credits.consume(
                {"organization": "acme", "feature": "smart_reply", "id": "u1"}
            )
            assert transport.sent[("POST", "/v1/credits/consume")] == 2
            view = await client.credits.get(organization="acme")
            assert view["balance"] == used["balance"] == 100 - 3
            await client.events.flush()  # the 10 batches were queued by track: their answers
            usage = await client.usage.get(organization="acme")
            assert usage["meters"]["calls"]["used"] == str(EVENTS)
            assert usage["meters"]["sessions"]["used"] == "1"
        assert transport.lost == [("POST", "/v1/events", 3), ("POST", "/v1/credits/consume", 1)]
        assert client.events.buffer.stats.batches == EVENTS // 1_000
        assert client.events.buffer.stats.sent == EVENTS

    run_async(main())
