"""The sandbox's hosted checkout page (PAY-1, SUB-3): an accessible form, paying with
each kind of test card, paying twice, unknown and expired checkouts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tabkeeper.db.tables import CheckoutSession, Invoice, PaymentMethod, Subscription
from tests.api.billing import make_organization, page_path, pay, start_checkout
from tests.api.conftest import ApiWorld


@pytest.fixture
def checkout(billing_api: ApiWorld) -> dict[str, Any]:
    """An open checkout of acme for Basic (30.00 USD), with no return_url."""
    make_organization(billing_api)
    return start_checkout(billing_api.member("acme", "alice"))


def nothing_started(api: ApiWorld) -> None:
    assert api.world.count(Subscription) == 0
    # An open checkout holds its first invoice as an unnumbered draft, written before the
    # member can pay (issue 12 item 7); nothing is issued.
    assert api.world.count(Invoice, Invoice.number.is_not(None)) == 0
    assert api.world.count(Invoice, Invoice.status != "draft") == 0
    assert api.world.count(PaymentMethod) == 0


def test_the_page_is_a_labelled_form_with_the_amount(
    billing_api: ApiWorld, checkout: dict[str, Any]
) -> None:
    """PAY-1, PRT-2: a plain HTML form: a labelled select of test cards, the amount, a
    Pay button; no script, no login."""
    page = billing_api.platform.http.get(page_path(checkout))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html and "<script" not in html
    assert '<label for="card">Test card</label>' in html and '<select id="card" name="card"' in html
    assert "30.00 USD" in html and "Basic" in html
    assert '<button type="submit">Pay 30.00 USD</button>' in html
    assert f'action="/sandbox/checkout/{checkout["id"]}"' in html


@pytest.mark.parametrize("card", ["card_ok", "4242 4242 4242 4242", "5555-5555-5555-4444"])
def test_paying_starts_the_subscription_and_comes_back(
    billing_api: ApiWorld, checkout: dict[str, Any], card: str
) -> None:
    """SUB-3, PAY-1: a good card pays; without a return_url the member comes back to the
    page, which now says "Payment received"."""
    paid = pay(billing_api, checkout, card)
    assert paid.status_code == 303
    assert paid.headers["location"] == checkout["url"]
    page = billing_api.platform.http.get(page_path(checkout))
    assert "Payment received" in page.text and "<form" not in page.text
    assert billing_api.world.count(Subscription, Subscription.state == "active") == 1
    assert billing_api.world.count(Invoice, Invoice.status == "paid") == 1


def test_paying_twice_charges_once(billing_api: ApiWorld, checkout: dict[str, Any]) -> None:
    """PAY-1: posting the form again gives the same answer and charges nothing more."""
    assert pay(billing_api, checkout, "card_ok").status_code == 303
    again = pay(billing_api, checkout, "card_declined")
    assert again.status_code == 303
    assert billing_api.world.charges() == 1
    assert billing_api.world.count(Invoice) == 1


@pytest.mark.parametrize("card", ["card_declined", "card_fails_later", "4000 0000 0000 0002"])
def test_a_declined_card_starts_nothing(
    billing_api: ApiWorld, checkout: dict[str, Any], card: str
) -> None:
    """SUB-3: a declined card shows "Your card was declined."; nothing starts, and the
    checkout stays declined (paying it again with a good card changes nothing)."""
    declined = pay(billing_api, checkout, card)
    assert declined.status_code == 200
    assert "Your card was declined." in declined.text
    nothing_started(billing_api)
    assert billing_api.world.count(CheckoutSession, CheckoutSession.status == "declined") == 1
    page = billing_api.platform.http.get(page_path(checkout))
    assert "Your card was declined." in page.text and "<form" not in page.text
    assert "Your card was declined." in pay(billing_api, checkout, "card_ok").text
    nothing_started(billing_api)


def test_a_card_the_sandbox_does_not_know_shows_the_form_again(
    billing_api: ApiWorld, checkout: dict[str, Any]
) -> None:
    """PAY-1: an unknown card is refused with the list of test cards, never the number;
    the checkout stays open."""
    refused = pay(billing_api, checkout, "1234 5678 9012 3456")
    assert refused.status_code == 400
    assert 'role="alert"' in refused.text and "ending in 3456" in refused.text
    assert "1234 5678 9012 3456" not in refused.text
    assert "<form" in refused.text
    nothing_started(billing_api)
    assert pay(billing_api, checkout, "card_ok").status_code == 303


def test_a_missing_card_field_is_a_problem(billing_api: ApiWorld, checkout: dict[str, Any]) -> None:
    response = billing_api.platform.http.post(page_path(checkout), data={})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    nothing_started(billing_api)


def test_an_expired_checkout_cannot_be_paid(
    billing_api: ApiWorld, checkout: dict[str, Any]
) -> None:
    """PAY-1: a checkout is open for 24 hours."""
    billing_api.world.clock.advance(timedelta(hours=25))
    page = billing_api.platform.http.get(page_path(checkout))
    assert page.status_code == 410 and "expired" in page.text
    paid = pay(billing_api, checkout, "card_ok")
    assert paid.status_code == 410
    nothing_started(billing_api)


@pytest.mark.parametrize("checkout_id", ["cs_sbx_unknown", "x" * 80, "%3Cscript%3E"])
def test_an_unknown_checkout_is_not_found(billing_api: ApiWorld, checkout_id: str) -> None:
    for response in (
        billing_api.platform.http.get(f"/sandbox/checkout/{checkout_id}"),
        billing_api.platform.http.post(
            f"/sandbox/checkout/{checkout_id}", data={"card": "card_ok"}
        ),
    ):
        assert response.status_code == 404
        assert "No such checkout" in response.text and "<script>" not in response.text


def test_a_second_checkout_paid_after_the_first_cannot_start_twice(
    billing_api: ApiWorld, checkout: dict[str, Any]
) -> None:
    """SUB-3, SUB-5: two checkouts opened before either was paid: the second one paid
    finds the organization subscribed and says so; its money becomes account credit,
    never a second subscription and never lost."""
    second = start_checkout(billing_api.member("acme", "bob"), plan="pro")
    assert pay(billing_api, checkout, "card_ok").status_code == 303
    refused = pay(billing_api, second, "card_ok")
    assert refused.status_code == 409
    assert "already subscribed" in refused.text
    assert billing_api.world.count(Subscription) == 1
    assert billing_api.world.count(Invoice) == 1
    credit = billing_api.platform.get("/v1/organizations/acme").json()["account_credit_minor"]
    assert credit == second["amount_minor"]


def test_a_declined_card_links_back_to_the_return_url(billing_api: ApiWorld) -> None:
    """SUB-3: with a return_url the declined page offers the way back, escaped."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    checkout = start_checkout(alice, return_url="https://app.test/billing?a=1&b={CHECKOUT_ID}")
    declined = pay(billing_api, checkout, "card_declined")
    back = f"https://app.test/billing?a=1&amp;b={checkout['id']}"
    assert f'<a href="{back}">Back</a>' in declined.text


def test_a_second_paid_checkout_is_not_left_open(
    billing_api: ApiWorld, checkout: dict[str, Any]
) -> None:
    """SUB-3: a checkout whose payment went through is never offered for payment again;
    a second one paid while subscribed becomes account credit, never lost (SUB-5)."""
    second = start_checkout(billing_api.member("acme", "bob"), plan="pro")
    pay(billing_api, checkout, "card_ok")
    pay(billing_api, second, "card_ok")
    assert billing_api.world.count(CheckoutSession, CheckoutSession.status == "open") == 0
    assert "<form" not in billing_api.platform.http.get(page_path(second)).text
