"""PAY-4, SUB-3: the Stripe provider's hosted pages in a real browser (Chromium through
Playwright) against localstripe, whose mock Stripe.js draws the card field and plays
3-D Secure as a dialog with "Complete authentication".

- subscribe through the hosted checkout page: the card typed into Stripe's field, saved
  with a SetupIntent, the checkout's PaymentIntent charged: "Payment received", the
  subscription active, the card on file (visa 4242), never its number in tabkeeper;
- a card needing authentication at checkout (...3155): the member completes it when the
  card is saved and again for the payment (localstripe asks for both);
- the page a `payment.action_required` notice links to: the member confirms the renewal's
  payment, which is settled at once (invoice paid, the subscription active again);
- "Manage" in the billing tab: a declined renewal's card replaced through Stripe's field,
  the open invoice collected at once.

Unlike the billing tab's browser tests, these run on both databases (the `engine`
fixture): the hosted pages are where real money comes in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import (
    Invoice,
    Notice,
    PaymentAttempt,
    PaymentMethod,
    Subscription,
)
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.services.access import Caller, create_api_key
from tabkeeper.services.checkout import open_checkout
from tabkeeper.settings import Settings
from tests.integration.conftest import FEB_1, World, make_world
from tests.portal.conftest import serving
from tests.stripe_fake.test_pay4_localstripe import NEEDS_AUTH, SECRET_KEY, VISA, Fake

STRIPE_JS_TIMEOUT = 10_000


@pytest.fixture
def hosted(engine: Engine, localstripe: str, browser: Any) -> Iterator[tuple[World, str]]:
    """A server with the Stripe provider (on localstripe) over a world of its own, on the
    test database: SQLite, and PostgreSQL in the `-m db` run (the issue's "on SQLite and
    PostgreSQL")."""
    world = make_world(engine)
    provider = StripeProvider(
        engine, world.clock, secret_key=SECRET_KEY, publishable_key="pk_test_localstripe",
        webhook_secret="whsec_hosted", api_base=localstripe, max_network_retries=0,
    )  # fmt: skip
    world.provider = provider  # type: ignore[assignment]
    app = create_app(Settings(database_url="sqlite://"), engine, clock=world.clock,
                     provider=provider, store=world.store)  # fmt: skip
    with serving(app) as base_url:
        yield world, base_url


def _type_card(page: Any, number: str) -> None:
    field = page.locator("#card")
    for name, value in (("number", number), ("exp_month", "12"), ("exp_year", "30"),
                        ("cvc", "123"), ("postal_code", "75001")):  # fmt: skip
        field.locator(f"input[placeholder={name}]").fill(value)


def _checkout(world: World, base_url: str) -> str:
    world.organization("acme")
    opened = open_checkout(
        world.billing, world.provider, Caller(world.platform_id), "acme", "basic", {}, None,
        base_url,
    )  # fmt: skip
    assert opened.url is not None and opened.url.startswith(f"{base_url}/stripe/checkout/pi_")
    return opened.url


def _subscribed(world: World) -> tuple[str, str, str]:
    with transaction(world.engine) as session:
        method = session.scalars(select(PaymentMethod)).one()
        state = session.scalars(select(Subscription.state)).one()
        return state, method.brand, method.last4


@pytest.mark.parametrize("card", [VISA, NEEDS_AUTH])
def test_pay4_subscribe_through_the_hosted_page(
    hosted: tuple[World, str], page: Any, card: str
) -> None:
    world, base_url = hosted
    page.goto(_checkout(world, base_url))
    page.get_by_role("heading", name="Pay for your subscription").wait_for()
    page.locator("#card input").first.wait_for(timeout=STRIPE_JS_TIMEOUT)
    _type_card(page, card)
    page.get_by_role("button", name="Pay 30.00").click()
    if card == NEEDS_AUTH:  # the bank asks when the card is saved, then for the payment
        page.get_by_role("button", name="Complete authentication").click()
        page.get_by_role("button", name="Confirm 30.00").click()
        page.get_by_role("button", name="Complete authentication").click()
    page.get_by_role("status").filter(has_text="Payment received").wait_for()
    assert _subscribed(world) == ("active", "visa", card[-4:])
    html = page.content()
    assert card not in html.replace(" ", "")  # the number never came back from tabkeeper


def test_pay4_the_action_required_page_completes_the_renewal(
    hosted: tuple[World, str], page: Any, localstripe: str
) -> None:
    world, base_url = hosted
    fake = Fake(localstripe)
    world.organization("acme")
    world.subscribe("acme", card=fake.card(VISA))
    provider = world.provider
    assert isinstance(provider, StripeProvider)
    card = provider.card_on_file(fake.card(NEEDS_AUTH))
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import save_payment_method

    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), card)
    world.clock.set(FEB_1)
    world.worker().tick()
    with transaction(world.engine) as session:
        attempt = session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()
        assert attempt is not None and attempt.failure_code == "authentication_required"
        notice = session.scalars(
            select(Notice).where(Notice.kind == "payment.action_required")
        ).one()
        assert session.scalars(select(Subscription.state)).one() == "past_due"
    link = notice.payload["url"]
    assert link.endswith(f"/stripe/pay/{attempt.provider_reference}")
    page.goto(f"{base_url}/stripe/pay/{attempt.provider_reference}")
    page.get_by_role("button", name="Confirm 30.00").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_role("status").filter(has_text="Payment confirmed").wait_for()
    with transaction(world.engine) as session:
        statuses = list(session.scalars(select(Invoice.status).order_by(Invoice.id)))
        assert statuses == ["paid", "paid"]
        assert session.scalars(select(Subscription.state)).one() == "active"


def test_pay4_manage_replaces_a_declined_card_and_collects_at_once(
    hosted: tuple[World, str], page: Any, localstripe: str
) -> None:
    """PAY-2, PAY-4, SUB-12: the renewal is declined (...0341): past_due; the owner opens
    "Manage" in the billing tab, types a new card into Stripe's field (saved with a
    SetupIntent), and the open invoice is collected at once: active again."""
    world, base_url = hosted
    fake = Fake(localstripe)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", card=fake.card(VISA))
    provider = world.provider
    assert isinstance(provider, StripeProvider)
    failing = provider.card_on_file(fake.card("4000000000000341"))
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import save_payment_method

    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), failing)
    world.clock.set(FEB_1)
    world.worker().tick()
    with transaction(world.engine) as session:
        assert session.scalars(select(Subscription.state)).one() == "past_due"
    with world.billing() as b:
        _, key = create_api_key(b.session, world.platform_id, "tests", world.clock.now())
    http = httpx.post(f"{base_url}/v1/portal_sessions", json={"organization": "acme",
                      "member": "alice"}, headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert http.status_code == 201, http.text
    page.goto(f"{base_url}/portal/enter?token={http.json()['token']}")
    page.goto(f"{base_url}/portal/payment_method")
    page.locator("#card-field input").first.wait_for(timeout=STRIPE_JS_TIMEOUT)
    field = page.locator("#card-field")
    for name, value in (("number", VISA), ("exp_month", "12"), ("exp_year", "31"),
                        ("cvc", "123"), ("postal_code", "75001")):  # fmt: skip
        field.locator(f"input[placeholder={name}]").fill(value)
    page.get_by_role("button", name="Save card").click()
    page.get_by_text("Visa ending in 4242").first.wait_for()
    with transaction(world.engine) as session:
        statuses = list(session.scalars(select(Invoice.status).order_by(Invoice.id)))
        assert statuses == ["paid", "paid"]
        assert session.scalars(select(Subscription.state)).one() == "active"
        method = session.scalars(select(PaymentMethod).where(PaymentMethod.is_default)).one()
        assert (method.provider, method.last4, method.exp_year) == ("stripe", "4242", 2031)
