"""The Python client's rules without a server (httpx.MockTransport; INT-1, NOT-1):
which calls are retried and how (GET, the check, keyed POSTs and batches of events with
ids; never a POST without a key), one Idempotency-Key across the retries of a consumption
and of a session start, a 409 `request_in_progress` retried, problems raised as ApiError,
and webhook signatures checked exactly as the server makes them (notify/webhooks.py).
Bad inputs tried on `verify`: a changed body, another secret, a timestamp 10 minutes
old or ahead, a missing header, a non-numeric timestamp, a signature of another version."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from tabkeeper_client import ApiError, AsyncClient, Client, Retry, WebhookVerificationError, verify
from tabkeeper_client.webhooks import sign

from tabkeeper.notify.parcels import WebhookParcel
from tabkeeper.notify.webhooks import new_secret, signed_headers, webhook_body
from tests.browser import run_async

QUICK = Retry(attempts=4, base=0, cap=0)
SENT_AT = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = int(SENT_AT.timestamp())


def scripted(answers: list[Any]) -> tuple[Client, list[httpx.Request]]:
    """A client whose transport answers from `answers` in order: a status (with a
    problem body), an exception to raise, or (status, body)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0) if answers else 200
        if isinstance(answer, Exception):
            raise answer
        status, body = answer if isinstance(answer, tuple) else (answer, None)
        if body is None:
            body = {"code": f"http_{status}", "detail": "scripted"} if status >= 400 else {}
        return httpx.Response(status, json=body)

    client = Client("tk_test", "http://tabkeeper.test", retry=QUICK,
                    transport=httpx.MockTransport(handle))  # fmt: skip
    return client, seen


def test_reads_and_the_check_are_retried_on_429_5xx_and_lost_connections_int_1() -> None:
    connect = httpx.ConnectError("refused")
    client, seen = scripted([503, 429, connect, (200, {"allowed": True})])
    assert client.check({"organization": "acme", "action": "start_session"}) == {"allowed": True}
    assert [r.url.path for r in seen] == ["/v1/check"] * 4
    client, seen = scripted([502, (200, {"data": [], "has_more": False, "next_cursor": None})])
    assert client.invoices.list(organization="acme")["data"] == []
    assert len(seen) == 2 and seen[0].url.params["organization"] == "acme"


def test_retries_stop_after_the_attempts_and_raise_the_last_error_int_1() -> None:
    client, seen = scripted([503, 503, 503, 503, 503])
    with pytest.raises(ApiError) as failed:
        client.usage.get(organization="acme")
    assert (failed.value.status, failed.value.code, len(seen)) == (503, "http_503", 4)


def test_a_post_without_a_key_is_sent_once_int_1() -> None:
    client, seen = scripted([503])
    with pytest.raises(ApiError):
        client.organizations.create({"code": "acme"})
    assert len(seen) == 1
    client, seen = scripted([httpx.ReadError("lost")])
    with pytest.raises(httpx.ReadError):
        client.subscriptions.create({"organization": "acme", "plan": "pro"})
    assert len(seen) == 1


def test_a_keyed_post_is_retried_with_its_key_and_request_in_progress_waits_int_1() -> None:
    client, seen = scripted([(409, {"code": "request_in_progress"}), 500, (201, {"code": "a"})])
    assert client.organizations.create({"code": "a"}, idempotency_key="k1") == {"code": "a"}
    assert [r.headers["idempotency-key"] for r in seen] == ["k1"] * 3
    # Without a key a 409 is the answer.
    client, seen = scripted([(409, {"code": "request_in_progress"})])
    with pytest.raises(ApiError) as refused:
        client.organizations.create({"code": "a"})
    assert (refused.value.code, len(seen)) == ("request_in_progress", 1)


def test_consume_and_session_start_keep_one_key_across_retries_crd_1_lim_3() -> None:
    used = {"credits": 3, "balance": 97, "duplicate": False}
    client, seen = scripted([httpx.ReadError("lost"), 503, (200, used)])
    body = {"organization": "acme", "feature": "smart_reply", "id": "u1"}
    assert client.credits.consume(body)["balance"] == 97  # type: ignore[arg-type]
    assert [r.headers["idempotency-key"] for r in seen] == ["consume:u1"] * 3
    assert {json.loads(r.content)["id"] for r in seen} == {"u1"}
    client, seen = scripted([httpx.ReadError("lost"), (200, {"allowed": True})])
    client.sessions.start({"organization": "acme", "agent": "bot", "conversation": "c"})
    keys = [r.headers["idempotency-key"] for r in seen]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("tkc_")
    # Two starts are two keys.
    client, seen = scripted([(200, {}), (200, {})])
    for _ in range(2):
        client.sessions.start({"organization": "acme", "agent": "bot", "conversation": "c"})
    assert seen[0].headers["idempotency-key"] != seen[1].headers["idempotency-key"]


def test_events_are_retried_only_when_each_has_its_id_use_1() -> None:
    client, seen = scripted([503])
    with pytest.raises(ApiError):
        client.events.ingest({"events": [{"type": "call.ended", "org": "acme"}]})
    assert len(seen) == 1
    answer = {"accepted": 1, "duplicates": 0, "refused": []}
    client, seen = scripted([503, (200, answer)])
    client.events.ingest({"events": [{"id": "e1", "type": "call.ended", "org": "acme"}]})
    assert len(seen) == 2


def test_track_batches_at_the_batch_size_with_ids_and_times_use_1() -> None:
    answer = {"accepted": 3, "duplicates": 0, "refused": [{"index": 1, "reason": "bad"}]}
    client, seen = scripted([(200, answer), (200, {**answer, "accepted": 2, "refused": []})])
    client.events.buffer.batch_size = 3
    client.events.buffer.interval = 3600
    ids = [client.events.track("call.ended", "acme", agent="bot") for _ in range(5)]
    assert client.events.buffer.pending == 2  # the first 3 went to the sender
    client.close()  # the other 2
    client.close()  # a second close does nothing
    assert [len(json.loads(r.content)["events"]) for r in seen] == [3, 2]
    sent = [e for r in seen for e in json.loads(r.content)["events"]]
    assert [e["id"] for e in sent] == ids and len(set(ids)) == 5
    assert all(e["time"].endswith("Z") and e["agent"] == "bot" for e in sent)
    stats = client.events.buffer.stats
    assert (stats.sent, stats.batches, stats.accepted) == (5, 2, 5)
    assert stats.refused == [{"index": 1, "reason": "bad", "id": ids[1]}]


def test_a_batch_that_cannot_be_sent_is_kept_and_raised_on_close_use_1() -> None:
    client, _ = scripted([422])
    client.events.track("call.ended", "acme")
    with pytest.raises(RuntimeError, match="1 batch"):
        client.close()
    assert len(client.events.buffer.failed) == 1


def test_verify_accepts_the_servers_signature_not_1() -> None:
    """NOT-1: the server's own signing (notify/webhooks.py, standardwebhooks) verifies."""
    secret = new_secret()
    body = webhook_body({"id": "evt_1", "type": "invoice.paid", "data": {"object": {"n": "é"}}})
    now = SENT_AT
    parcel = WebhookParcel(1, now, "msg_1", "https://example.com/hook", secret, body)
    headers = signed_headers(parcel, now)
    assert verify(headers, body.encode(), secret, now=STAMP)["type"] == "invoice.paid"
    titled = {k.title(): v for k, v in headers.items()}
    assert verify(titled, body, secret, now=STAMP + 299)["id"] == "evt_1"
    stamp = int(headers["webhook-timestamp"])
    assert sign(secret, "msg_1", stamp, body) == Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(stamp, UTC), body
    )
    # A second signature (a rotated secret) beside the right one still verifies.
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert verify(rotated, body, secret, now=STAMP)["id"] == "evt_1"


@pytest.mark.parametrize(
    "change",
    ["body", "secret", "old", "ahead", "missing", "timestamp", "version"],
)
def test_verify_refuses_what_the_server_did_not_sign_now_not_1(change: str) -> None:
    secret = new_secret()
    body = webhook_body({"id": "evt_1", "type": "invoice.paid"})
    now = SENT_AT
    headers = signed_headers(WebhookParcel(1, now, "msg_1", "https://e.com", secret, body), now)
    stamp = int(headers["webhook-timestamp"])
    when = STAMP
    if change == "body":
        body = body.replace("paid", "void")
    elif change == "secret":
        secret = new_secret()
    elif change in ("old", "ahead"):
        when = stamp + (600 if change == "old" else -600)
    elif change == "missing":
        del headers["webhook-signature"]
    elif change == "timestamp":
        headers["webhook-timestamp"] = "soon"
    else:
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, secret, now=when)


def test_the_timer_sends_a_partial_batch_without_a_flush_use_1() -> None:
    """A partial batch goes by itself once its oldest event has waited `flush_interval`
    (0 here, so no time is measured): the sync client's thread and the async client's
    task each send it, with no flush or close."""
    arrived = threading.Event()
    answer = {"accepted": 2, "duplicates": 0, "refused": []}

    def handle(request: httpx.Request) -> httpx.Response:
        arrived.set()
        return httpx.Response(200, json=answer)

    client = Client("k", "http://t", flush_interval=0, transport=httpx.MockTransport(handle))
    client.events.track("call.ended", "acme")
    client.events.track("call.ended", "acme")
    assert arrived.wait(30), "the timer thread sent nothing"
    client.close()
    assert client.events.buffer.stats.sent == 2

    async def main() -> None:
        sent = asyncio.Event()

        async def handle_async(request: httpx.Request) -> httpx.Response:
            sent.set()
            return httpx.Response(200, json=answer)

        transport = httpx.MockTransport(handle_async)
        async with AsyncClient("k", "http://t", flush_interval=0, transport=transport) as aclient:
            await aclient.events.track("call.ended", "acme")
            await aclient.events.track("call.ended", "acme")
            await asyncio.wait_for(sent.wait(), 30)
            assert aclient.events.buffer.stats.batches >= 1
        assert aclient.events.buffer.stats.sent == 2

    run_async(main())
