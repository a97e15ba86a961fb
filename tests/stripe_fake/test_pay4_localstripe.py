"""PAY-4 against a stateful fake Stripe (localstripe, conftest.py), on SQLite and
PostgreSQL: the Stripe provider subscribes, renews and charges off-session, survives a
declined renewal (past_due, card replaced, collected at once), a renewal that needs
authentication (`payment.action_required`, completed, active again through the webhook),
and refunds a credit note, the refund visible in the fake.

localstripe's test cards match the sandbox's: 4242... succeeds, ...0002 is declined when
saved, ...0341 saves but every charge is declined, ...3155 needs authentication. Cards are
made as Stripe.js would make them (a PaymentMethod "pm_..."), here by the API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tabkeeper.api.app import create_app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, PaymentAttempt, PaymentMethod, Subscription
from tabkeeper.db.tables_corrections import CreditNote
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.payments.provider import CardDeclined
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.services.access import Caller
from tabkeeper.services.credit_notes import credit_invoice
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import add_payment_method, customer_of
from tabkeeper.settings import Settings
from tests.integration.conftest import FEB_1, World, make_world

SECRET_KEY = "sk_test_localstripe"
WEBHOOK_SECRET = "whsec_localstripe"
VISA, DECLINED, FAILS_LATER, NEEDS_AUTH = (
    "4242424242424242", "4000000000000002", "4000000000000341", "4000002500003155")  # fmt: skip


class Fake:
    """The fake Stripe, read and driven as a test would (raw HTTP, its JSON)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = (SECRET_KEY, "")

    def post(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.post(f"{self.base}{path}", data=data, timeout=10)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def get(self, path: str) -> dict[str, Any]:
        answer = self.session.get(f"{self.base}{path}", timeout=10)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def card(self, number: str) -> str:
        """A PaymentMethod for the card `number`, as Stripe.js makes one."""
        made = self.post("/v1/payment_methods", {
            "type": "card", "card[number]": number, "card[exp_month]": "12",
            "card[exp_year]": "2030", "card[cvc]": "123"})  # fmt: skip
        return str(made["id"])


@pytest.fixture
def stripe_world(engine: Engine, localstripe: str) -> Iterator[tuple[World, Fake, TestClient]]:
    world = make_world(engine)
    provider = StripeProvider(
        engine, world.clock, secret_key=SECRET_KEY, publishable_key="pk_test_localstripe",
        webhook_secret=WEBHOOK_SECRET, api_base=localstripe, max_network_retries=0,
    )  # fmt: skip
    world.provider = provider  # type: ignore[assignment]
    app = create_app(Settings(database_url="sqlite://"), engine, clock=world.clock,
                     provider=provider, store=world.store)  # fmt: skip
    yield world, Fake(localstripe), TestClient(app)


def _state(world: World) -> tuple[list[str], str]:
    """(each invoice's status, oldest first; the subscription's state)."""
    with transaction(world.engine) as session:
        statuses = list(session.scalars(select(Invoice.status).order_by(Invoice.id)))
        return statuses, session.scalars(select(Subscription.state)).one()


def _last_attempt(world: World) -> PaymentAttempt:
    with transaction(world.engine) as session:
        found = session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()
        assert found is not None
        return found


def _subscribe(world: World, fake: Fake) -> None:
    world.organization("acme")
    world.subscribe("acme", card=fake.card(VISA))


def _save(world: World, fake: Fake, number: str) -> None:
    """`number` saved as acme's card, as after the member confirmed it on the hosted page
    (no SetupIntent: localstripe would ask for authentication again)."""
    provider = world.provider
    assert isinstance(provider, StripeProvider)
    card = provider.card_on_file(fake.card(number))
    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), card)


def test_pay4_subscribe_renew_and_charge_off_session(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-4: the first payment and the card through Stripe (a SetupIntent, then the
    checkout's PaymentIntent); the renewal charged off-session as a PaymentIntent keyed by
    its attempt; both succeeded in the fake; one Stripe customer, its id kept."""
    world, fake, _http = stripe_world
    _subscribe(world, fake)
    with transaction(world.engine) as session:
        method = session.scalars(select(PaymentMethod)).one()
        assert (method.provider, method.brand, method.last4) == ("stripe", "visa", "4242")
        assert method.token.startswith("pm_")
    world.clock.set(FEB_1)
    world.worker().tick()
    assert _state(world) == (["paid", "paid"], "active")
    attempt = _last_attempt(world)
    assert attempt.provider_reference is not None
    intent = fake.get(f"/v1/payment_intents/{attempt.provider_reference}")
    assert intent["status"] == "succeeded"
    assert intent["metadata"]["tabkeeper_attempt"] == attempt.idempotency_key
    assert intent["amount"] == attempt.amount_minor and intent["currency"] == "usd"
    customer = fake.get(f"/v1/customers/{intent['customer']}")
    assert customer["metadata"]["tabkeeper_customer"].startswith("org_")


def test_pay4_a_card_declined_when_saved_starts_nothing(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-4, SUB-3: ...0002 is declined by the SetupIntent: nothing saved or started."""
    world, fake, _http = stripe_world
    world.organization("acme")
    with pytest.raises(CardDeclined):
        world.subscribe("acme", card=fake.card(DECLINED))
    assert world.count(PaymentMethod) == 0
    assert world.count(Subscription) == 0


def test_pay4_a_declined_renewal_then_a_new_card_collects_at_once(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-4, SUB-8, SUB-12: the renewal's off-session charge is declined (...0341):
    past_due with payment.failed; a new card saved through Stripe collects the open
    invoice at once and the subscription is active again."""
    world, fake, _http = stripe_world
    _subscribe(world, fake)
    _save(world, fake, FAILS_LATER)
    world.clock.set(FEB_1)
    world.worker().tick()
    assert _state(world) == (["paid", "open"], "past_due")
    failed = _last_attempt(world)
    assert (failed.status, failed.failure_code) == ("failed", "card_declined")
    assert world.notices("payment.failed") == 1
    caller = Caller(world.platform_id)
    _code, method, collection = add_payment_method(
        world.billing, world.provider, caller, "acme", fake.card(VISA)
    )
    assert (method.last4, collection.succeeded, collection.state) == ("4242", True, "active")
    assert _state(world) == (["paid", "paid"], "active")
    intent = fake.get(f"/v1/payment_intents/{_last_attempt(world).provider_reference}")
    assert intent["status"] == "succeeded"


def _signed(payload: bytes) -> str:
    timestamp = int(SystemClock().now().timestamp())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload,
                      hashlib.sha256).hexdigest()  # fmt: skip
    return f"t={timestamp},v1={digest}"


def test_pay4_a_renewal_needing_authentication_is_completed_by_the_member(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-4, SUB-8: the renewal's PaymentIntent needs 3-D Secure (...3155): past_due,
    `payment.action_required` to the organization; the member completes the
    authentication (localstripe's stand-in for Stripe.js), Stripe sends
    payment_intent.succeeded, and the invoice is paid, the subscription active at once."""
    world, fake, http = stripe_world
    _subscribe(world, fake)
    _save(world, fake, NEEDS_AUTH)
    world.clock.set(FEB_1)
    world.worker().tick()
    assert _state(world) == (["paid", "open"], "past_due")
    attempt = _last_attempt(world)
    assert attempt.failure_code == "authentication_required"
    assert world.notices("payment.action_required") == 1
    intent_id = attempt.provider_reference
    assert intent_id is not None
    intent = fake.get(f"/v1/payment_intents/{intent_id}")
    assert intent["status"] == "requires_action"
    done = fake.post(f"/v1/payment_intents/{intent_id}/_authenticate",
                     {"client_secret": intent["client_secret"], "success": "true"})  # fmt: skip
    assert done["status"] == "succeeded"
    event = {"id": "evt_auth_done", "object": "event", "type": "payment_intent.succeeded",
             "created": int(SystemClock().now().timestamp()), "data": {"object": done}}  # fmt: skip
    payload = json.dumps(event).encode()
    headers = {"Stripe-Signature": _signed(payload), "Content-Type": "application/json"}
    answer = http.post("/v1/providers/stripe/webhook", content=payload, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "payment completed after authentication, invoice paid"
    assert _state(world) == (["paid", "paid"], "active")


def test_pay4_a_credit_note_is_refunded_through_stripe(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-4, INV-5: a credit note with a refund of 12.00 on the paid first invoice makes a
    Refund of its PaymentIntent in the fake."""
    world, fake, _http = stripe_world
    _subscribe(world, fake)
    with transaction(world.engine) as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
        reference = session.scalars(select(PaymentAttempt.provider_reference)).one()
    assert reference is not None and reference.startswith("pi_")
    request = CreditRequest(amount_minor=1200, refund=True)
    note_id = credit_invoice(world.billing, world.provider, invoice_id, request)
    with transaction(world.engine) as session:
        note = session.get(CreditNote, note_id)
        assert note is not None
        assert (note.refund_status, note.refund_minor) == ("succeeded", 1200)
    refunds = fake.get("/v1/refunds")["data"]
    mine = [r for r in refunds if r.get("payment_intent") == reference]
    assert [r["amount"] for r in mine] == [1200]


def test_pay3_setup_intent_succeeded_saves_the_card_once(
    stripe_world: tuple[World, Fake, TestClient],
) -> None:
    """PAY-3, PAY-2: a card saved at Stripe outside tabkeeper's own calls (a SetupIntent
    confirmed by Stripe.js) arrives as setup_intent.succeeded: its brand, last 4 and expiry
    are read from Stripe before the transaction and it becomes the organization's card,
    once, however often the event comes."""
    world, fake, http = stripe_world
    world.organization("acme")
    provider = world.provider
    assert isinstance(provider, StripeProvider)
    with world.billing() as b:
        customer = customer_of(organization_by_code(b, "acme"))
    setup_id = provider.setup_for(customer).split("_secret_")[0]
    confirmed = fake.post(f"/v1/setup_intents/{setup_id}/confirm",
                          {"payment_method": fake.card(VISA)})  # fmt: skip
    assert confirmed["status"] == "succeeded"
    event = {"id": "evt_setup_1", "object": "event", "type": "setup_intent.succeeded",
             "created": int(SystemClock().now().timestamp()),
             "data": {"object": fake.get(f"/v1/setup_intents/{setup_id}")}}  # fmt: skip
    payload = json.dumps(event).encode()
    outcomes = []
    for _ in range(2):
        headers = {"Stripe-Signature": _signed(payload), "Content-Type": "application/json"}
        answer = http.post("/v1/providers/stripe/webhook", content=payload, headers=headers)
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["outcome"])
    assert outcomes == ["card saved as the default", None]
    with transaction(world.engine) as session:
        method = session.scalars(select(PaymentMethod)).one()
        assert (method.provider, method.brand, method.last4, method.is_default) == (
            "stripe", "visa", "4242", True)  # fmt: skip
