"""PAY-3: Stripe's callbacks on `POST /v1/providers/stripe/webhook` are verified by their
signature and processed exactly once, on SQLite and PostgreSQL.

The events are signed here with the endpoint's secret, as Stripe signs them (HMAC-SHA256
of "timestamp.body", header `t=...,v1=...`); no Stripe server is needed: the renewal's
payment attempt is left unfinished by a worker that dies after the charge (as when the
answer of an off-session PaymentIntent never came back), and the webhook settles it.

Bad inputs tried, each 400 with nothing stored or changed: a signature made with another
secret, no Stripe-Signature header, a signature older than the 5 minutes' tolerance, a body
changed after signing, a body that is not JSON, a signed body that is not an event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tabkeeper.api.app import create_app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, PaymentAttempt, PaymentMethod, Subscription
from tabkeeper.db.tables_stripe import ProviderEvent
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.services import provider_events
from tabkeeper.settings import Settings
from tests.integration.conftest import FEB_1, Crash, World, make_world

SECRET = "whsec_test_pay3"
URL = "/v1/providers/stripe/webhook"


def sign(payload: bytes, secret: str = SECRET, age: int = 0) -> str:
    """A Stripe-Signature header for `payload`, made `age` seconds ago."""
    timestamp = int(SystemClock().now().timestamp()) - age
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_id: str, kind: str, obj: dict[str, Any]) -> bytes:
    body = {"id": event_id, "object": "event", "type": kind, "created": 1800000000,
            "livemode": False, "data": {"object": obj}}  # fmt: skip
    return json.dumps(body).encode()


@pytest.fixture
def stripe_world(engine: Engine) -> Iterator[tuple[World, TestClient]]:
    world = make_world(engine)
    provider = StripeProvider(
        engine,
        world.clock,
        secret_key="sk_test_pay3",
        publishable_key="pk_test_pay3",
        webhook_secret=SECRET,
        api_base="http://127.0.0.1:9",  # never called by these events
        max_network_retries=0,
    )
    app = create_app(Settings(database_url="sqlite://"), engine, clock=world.clock,
                     provider=provider, store=world.store)  # fmt: skip
    yield world, TestClient(app)


def unfinished_renewal(world: World, card: str = "card_ok") -> PaymentAttempt:
    """A renewal whose charge was made and never recorded (the worker died)."""
    world.organization("acme")
    world.subscribe("acme")
    if card != "card_ok":
        from tabkeeper.services.organizations import organization_by_code
        from tabkeeper.services.payment_methods import save_payment_method
        from tabkeeper.services.payments import customer_of

        with world.billing() as b:
            customer = customer_of(organization_by_code(b, "acme"))
        saved = world.provider.attach(customer, card)
        with world.billing() as b:
            save_payment_method(b, organization_by_code(b, "acme"), saved)
    world.clock.set(FEB_1)
    with pytest.raises(Crash):
        world.worker(crash_at="charged").tick()
    return _attempt(world)


def _attempt(world: World) -> PaymentAttempt:
    with transaction(world.engine) as session:
        return session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()


def _state(world: World) -> tuple[str, str, str]:
    """(the renewal's status, its attempt's status, the subscription's state)."""
    with transaction(world.engine) as session:
        attempt = session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()
        assert attempt is not None
        invoice = session.get(Invoice, attempt.invoice_id)
        assert invoice is not None
        return invoice.status, attempt.status, session.scalars(select(Subscription.state)).one()


def intent(attempt: PaymentAttempt, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "pi_pay3_1", "object": "payment_intent", "status": status,
            "amount": attempt.amount_minor, "currency": "usd",
            "metadata": {"tabkeeper_attempt": attempt.idempotency_key}, **extra}  # fmt: skip


def deliver(http: TestClient, payload: bytes, signature: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    headers["Stripe-Signature"] = signature if signature is not None else sign(payload)
    return http.post(URL, content=payload, headers=headers)


def test_pay3_a_signed_event_delivered_three_times_and_out_of_order_is_processed_once(
    stripe_world: tuple[World, TestClient],
) -> None:
    """PAY-3: payment_intent.succeeded delivered three times, with the same payment's
    payment_failed arriving after it: the renewal is paid once, one invoice.paid notice,
    and the late failure changes nothing."""
    world, http = stripe_world
    attempt = unfinished_renewal(world)
    assert _state(world) == ("open", "processing", "active")
    succeeded = event("evt_pay3_ok", "payment_intent.succeeded", intent(attempt, "succeeded"))
    failed = event(
        "evt_pay3_failed_late",
        "payment_intent.payment_failed",
        intent(attempt, "requires_payment_method",
               last_payment_error={"code": "card_declined", "decline_code": "generic_decline"}),
    )  # fmt: skip
    answers = [deliver(http, succeeded) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert answers[0].json()["outcome"] == "attempt succeeded, invoice paid"
    late = deliver(http, failed)
    assert late.status_code == 200
    assert late.json()["outcome"] == "nothing to do: attempt already succeeded"
    assert deliver(http, failed).json()["duplicate"] is True
    assert _state(world) == ("paid", "succeeded", "active")
    assert world.notices("invoice.paid") == 2  # the checkout's and the renewal's, once
    assert world.notices("payment.failed") == 0
    assert world.count(ProviderEvent) == 2
    # The worker that takes the collection over finds it settled: no second charge.
    charges = world.charges()
    world.clock.set(FEB_1.replace(minute=10))
    world.worker().tick()
    assert world.charges() == charges
    assert _state(world) == ("paid", "succeeded", "active")


def test_pay3_a_failure_then_the_payment_completed_after_authentication(
    stripe_world: tuple[World, TestClient],
) -> None:
    """PAY-3, PAY-4, SUB-8: requires_action records the attempt as needing the member:
    past_due, payment.action_required; the succeeded event after the member confirmed it
    settles the invoice at once and the subscription is active again; replays of either
    change nothing."""
    world, http = stripe_world
    attempt = unfinished_renewal(world)
    action = event("evt_pay3_action", "payment_intent.requires_action",
                   intent(attempt, "requires_action"))  # fmt: skip
    for _ in range(2):
        assert deliver(http, action).status_code == 200
    assert _state(world) == ("open", "failed", "past_due")
    assert world.notices("payment.action_required") == 1
    assert world.notices("subscription.past_due") == 1
    done = event("evt_pay3_done", "payment_intent.succeeded", intent(attempt, "succeeded"))
    first = deliver(http, done)
    assert first.json()["outcome"] == "payment completed after authentication, invoice paid"
    assert deliver(http, action).json()["duplicate"] is True  # late replay of the first
    assert deliver(http, done).json()["duplicate"] is True
    assert _state(world) == ("paid", "succeeded", "active")
    assert world.notices("invoice.paid") == 2


def test_pay3_a_forged_or_bad_callback_is_refused_and_stores_nothing(
    stripe_world: tuple[World, TestClient],
) -> None:
    """PAY-3: bad signatures and bodies are 400 problems; nothing is stored or changed."""
    world, http = stripe_world
    attempt = unfinished_renewal(world)
    payload = event("evt_pay3_forged", "payment_intent.succeeded", intent(attempt, "succeeded"))
    tampered = payload.replace(b'"usd"', b'"eur"')
    not_an_event = json.dumps({"hello": "world"}).encode()
    cases = [
        (payload, sign(payload, secret="whsec_someone_else"), "invalid_signature"),
        (payload, "", "invalid_signature"),
        (payload, sign(payload, age=301), "invalid_signature"),  # past the 5 minutes
        (tampered, sign(payload), "invalid_signature"),
        (b"not json", sign(b"not json"), "invalid_signature"),
        (not_an_event, sign(not_an_event), "invalid_event"),
    ]
    for body, signature, code in cases:
        answer = deliver(http, body, signature)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert world.count(ProviderEvent) == 0
    assert _state(world) == ("open", "processing", "active")
    # The same event signed rightly goes through (within the tolerance).
    assert deliver(http, payload, sign(payload, age=200)).status_code == 200
    assert _state(world) == ("paid", "succeeded", "active")


def test_pay3_a_crash_after_storing_the_event_before_its_effect_is_recovered_on_redelivery(
    stripe_world: tuple[World, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAY-3: the event row and its effect are one transaction: a crash in between leaves
    neither, the delivery is not answered 2xx, and Stripe's redelivery does it all once."""
    world, http = stripe_world
    attempt = unfinished_renewal(world)
    payload = event("evt_pay3_crash", "payment_intent.succeeded", intent(attempt, "succeeded"))
    stored: list[int] = []

    def dies(session: Session, *_args: Any) -> str:
        stored.append(session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)
        raise Crash("after storing the event")

    with monkeypatch.context() as patch:
        patch.setitem(provider_events.HANDLERS, "payment_intent.succeeded", dies)
        with pytest.raises(Crash):
            deliver(http, payload)
    assert stored == [1]  # stored in the transaction, then the crash
    assert world.count(ProviderEvent) == 0
    assert _state(world) == ("open", "processing", "active")
    again = deliver(http, payload)
    assert again.status_code == 200
    assert again.json() == {"event": "evt_pay3_crash", "duplicate": False,
                            "outcome": "attempt succeeded, invoice paid"}  # fmt: skip
    assert deliver(http, payload).json()["duplicate"] is True
    assert _state(world) == ("paid", "succeeded", "active")
    assert world.notices("invoice.paid") == 2


def test_pay3_card_events_update_the_saved_card_and_a_dispute_is_noticed(
    stripe_world: tuple[World, TestClient],
) -> None:
    """PAY-3, PAY-2: payment_method.updated changes brand, last 4 and expiry of the saved
    card; detached clears it as the default; charge.dispute.created notices the
    organization once and flags the invoice; an unknown type is stored and ignored."""
    world, http = stripe_world
    attempt = unfinished_renewal(world)
    token = "pm_pay3_card"
    with transaction(world.engine) as session:  # the card as saved through Stripe
        method = session.scalars(select(PaymentMethod)).one()
        method.provider, method.token = "stripe", token
    card = {"brand": "mastercard", "last4": "4444", "exp_month": 7, "exp_year": 2031}
    updated = event("evt_pay3_pm", "payment_method.updated",
                    {"id": token, "object": "payment_method", "card": card})  # fmt: skip
    assert deliver(http, updated).json()["outcome"] == "1 saved card(s) updated"
    with transaction(world.engine) as session:
        method = session.scalars(select(PaymentMethod)).one()
        assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
            "mastercard", "4444", 7, 2031)  # fmt: skip
    assert deliver(http, event("evt_pay3_paid", "payment_intent.succeeded",
                               intent(attempt, "succeeded"))).status_code == 200  # fmt: skip
    dispute = event("evt_pay3_dispute", "charge.dispute.created",
                    {"id": "dp_1", "object": "dispute", "payment_intent": "pi_pay3_1",
                     "amount": attempt.amount_minor, "reason": "fraudulent"})  # fmt: skip
    outcomes = [deliver(http, dispute).json()["outcome"] for _ in range(2)]
    assert outcomes == ["dispute noticed, invoice flagged", None]
    assert world.notices("payment.disputed") == 1
    with transaction(world.engine) as session:
        flagged = session.get(Invoice, attempt.invoice_id)
        assert flagged is not None and flagged.disputed_at == world.clock.now()
    detached = event("evt_pay3_detached", "payment_method.detached",
                     {"id": token, "object": "payment_method"})  # fmt: skip
    assert deliver(http, detached).json()["outcome"] == "1 default(s) cleared"
    with transaction(world.engine) as session:
        assert session.scalars(select(PaymentMethod.is_default)).one() is False
    other = event("evt_pay3_other", "customer.created", {"id": "cus_1", "object": "customer"})
    assert deliver(http, other).json()["outcome"] == "ignored: type not used"
    assert world.count(ProviderEvent) == 5


def test_pay3_the_route_does_not_exist_with_the_sandbox(engine: Engine) -> None:
    """PAY-3: with the sandbox provider there is no Stripe endpoint (404), nothing stored."""
    world = make_world(engine)
    http = TestClient(create_app(Settings(database_url="sqlite://"), engine,
                                 clock=world.clock, provider=world.provider))  # fmt: skip
    payload = event("evt_sandbox", "payment_intent.succeeded", {"id": "pi_1"})
    assert deliver(http, payload).status_code == 404
    assert world.count(ProviderEvent) == 0
