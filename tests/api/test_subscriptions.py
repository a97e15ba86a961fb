"""Subscriptions through the API: subscribe through checkout (SUB-3), the card (SUB-1,
TRI-1), cancel and resume (SUB-7), demo requests (CAT-2), and bad inputs that change
nothing. Plan changes (SUB-4) are in test_plan_changes.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import CheckoutSession, Subscription
from tests.api.billing import (
    ACME,
    make_billing_world,
    make_organization,
    pay,
    problem,
    start_checkout,
    subscribe,
    the_subscription,
)
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import FEB_1, JAN_1


@pytest.fixture
def acme(billing_api: ApiWorld) -> Client:
    """acme's owner (alice), acme subscribed to Basic on Jan 1."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    return alice


def test_subscribe_through_checkout_starts_when_paid(billing_api: ApiWorld) -> None:
    """SUB-3, PAY-1: the answer is an open checkout; nothing starts until the member pays
    on the hosted page; then the subscription is active and its first invoice is paid."""
    make_organization(billing_api)
    bob = billing_api.member("acme", "bob")  # a billing admin may subscribe (ACL-1)
    checkout = start_checkout(bob, return_url="https://app.test/billing?c={CHECKOUT_ID}")
    assert checkout["amount_minor"] == 3000 and checkout["currency"] == "USD"
    assert checkout["url"].startswith("http://127.0.0.1:8000/sandbox/checkout/cs_")
    assert bob.get("/v1/subscriptions", organization="acme").json()["data"] == []
    paid = pay(billing_api, checkout, "card_ok")
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://app.test/billing?c={checkout['id']}"
    card = the_subscription(bob)
    assert card["state"] == "active" and card["plan"] == "basic"
    assert card["badge"] == "Active subscription" and card["payment_pending"] is False
    assert card["period_start"] == "2026-01-01T00:00:00Z"
    assert card["next_billing_at"] == card["period_end"] == "2026-02-01T00:00:00Z"
    assert card["usage"]["minutes"] == {
        "used": "0",
        "included": "100",
        "level": "ok",
        "period_start": "2026-01-01T00:00:00Z",
    }
    (invoice,) = bob.get("/v1/invoices", organization="acme").json()["data"]
    assert (invoice["status"], invoice["amount_due_minor"]) == ("paid", 3000)
    assert bob.get(f"/v1/subscriptions/{card['id']}").json() == card


def test_a_free_plan_starts_at_once(billing_api: ApiWorld) -> None:
    """SUB-3: a plan that costs nothing needs no checkout; it starts at once."""
    make_organization(billing_api)
    response = billing_api.platform.post(
        "/v1/subscriptions", {"organization": "acme", "plan": "trial"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["checkout"]["status"] == "completed" and body["checkout"]["url"] is None
    assert body["subscription"]["state"] == "active"
    assert body["subscription"] == the_subscription(billing_api.platform)


def test_subscribing_with_add_ons_bills_their_slots(billing_api: ApiWorld) -> None:
    """SUB-3, CAT-5: add-on slots bought with the plan are in the first payment."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    checkout = start_checkout(alice, addons={"extra_agent": 2})
    assert checkout["amount_minor"] == 3000 + 2 * 1000
    assert pay(billing_api, checkout, "card_ok").status_code == 303
    assert the_subscription(alice)["addons"] == [
        {"code": "extra_agent", "quantity": 2, "quantity_next_period": 2}
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"organization": "acme", "plan": "platinum"}, 400, "unknown_plan"),
        ({"organization": "acme", "plan": "enterprise"}, 409, "sales_led_plan"),
        ({"organization": "acme", "plan": "basic", "addons": {"nope": 1}}, 400, "unknown_addon"),
        (
            {"organization": "acme", "plan": "basic", "addons": {"extra_agent": 0}},
            422,
            "invalid_request",
        ),
        ({"organization": "acme", "plan": "basic", "coupon": "X"}, 422, "invalid_request"),
        (
            {"organization": "acme", "plan": "basic", "return_url": "javascript:alert(1)"},
            422,
            "invalid_request",
        ),
        ({"organization": "nobody", "plan": "basic"}, 404, "not_found"),
        ({"plan": "basic"}, 422, "invalid_request"),
    ],
)
def test_bad_subscribe_requests_change_nothing(
    billing_api: ApiWorld, body: dict[str, Any], status: int, code: str
) -> None:
    """SUB-3: a refused request answers problem+json with a stable code; no checkout is
    opened and no subscription made."""
    make_organization(billing_api)
    problem(billing_api.platform.post("/v1/subscriptions", body), status, code)
    assert billing_api.world.count(CheckoutSession) == 0
    assert billing_api.world.count(Subscription) == 0


def test_subscribing_twice_is_refused(acme: Client) -> None:
    """SUB-3: an organization with a paid subscription changes its plan instead."""
    problem(
        acme.post("/v1/subscriptions", {"organization": "acme", "plan": "pro"}),
        409,
        "already_subscribed",
    )


# ---------------------------------------------------------------- SUB-7 cancel, resume
def test_cancel_and_resume(billing_api: ApiWorld, acme: Client) -> None:
    """SUB-7, SUB-1: a canceled subscription stays usable until the period ends and shows
    "Canceled subscription" with its end; resume undoes it."""
    path = f"/v1/subscriptions/{the_subscription(acme)['id']}"
    canceled = acme.post(f"{path}/cancel")
    assert canceled.status_code == 200, canceled.text
    card = canceled.json()
    assert (card["state"], card["cancel_at_period_end"]) == ("active", True)
    assert card["badge"] == "Canceled subscription"
    assert (card["ends_at"], card["next_billing_at"]) == ("2026-02-01T00:00:00Z", None)
    problem(acme.post(f"{path}/cancel"), 409, "already_canceled")
    resumed = acme.post(f"{path}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["badge"] == "Active subscription"
    assert resumed.json()["cancel_at_period_end"] is False
    problem(acme.post(f"{path}/resume"), 409, "not_canceled")


def test_a_cancellation_ends_the_subscription_at_the_period_end(
    billing_api: ApiWorld, acme: Client
) -> None:
    """SUB-7: at the period's end a canceled subscription ends and keeps "Canceled
    subscription" with its end date; it cannot be resumed any more."""
    path = f"/v1/subscriptions/{the_subscription(acme)['id']}"
    acme.post(f"{path}/cancel")
    billing_api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    acme = billing_api.member("acme", "alice")  # a portal session lasts an hour
    card = acme.get(path).json()
    assert (card["state"], card["badge"]) == ("canceled", "Canceled subscription")
    assert card["ends_at"] == "2026-02-01T00:00:00Z"
    problem(acme.post(f"{path}/resume"), 409, "subscription_ended")
    assert len(acme.get("/v1/invoices").json()["data"]) == 1  # no renewal


def test_a_change_is_refused_while_canceling(acme: Client) -> None:
    """SUB-4, SUB-7: resume first, then change."""
    path = f"/v1/subscriptions/{the_subscription(acme)['id']}"
    acme.post(f"{path}/cancel")
    problem(acme.post(f"{path}/change", {"plan": "pro"}), 409, "cancel_pending")


# ------------------------------------------------------------------ the trial card
def test_a_trial_card_shows_sessions_and_days_left(engine: Engine) -> None:
    """SUB-1, TRI-1: a new organization's trial shows "Trial subscription", its end and
    its sessions left; subscribing through checkout replaces it."""
    api = make_billing_world(engine, {"trial": {"days": 14, "sessions": 50}})
    make_organization(api)
    alice = api.member("acme", "alice")
    card = the_subscription(alice)
    assert (card["state"], card["badge"]) == ("trialing", "Trial subscription")
    assert card["trial_ends_at"] == "2026-01-15T00:00:00Z"
    assert card["trial_sessions"] == {"included": 50, "used": 0, "left": 50}
    api.world.clock.set(JAN_1 + timedelta(days=12, hours=1))
    alice = api.member("acme", "alice")  # a portal session lasts an hour
    assert the_subscription(alice)["badge"] == "Trial ending soon"
    subscribe(api, alice)
    card = the_subscription(alice)
    assert (card["state"], card["trial_sessions"], card["trial_ends_at"]) == ("active", None, None)


# -------------------------------------------------------------------------- CAT-2
def test_book_a_demo_of_a_sales_led_plan(billing_api: ApiWorld) -> None:
    """CAT-2: asking for a sales-led plan answers "Request received" and makes a request
    the platform sees; a plan that can be bought directly is refused."""
    make_organization(billing_api)
    bob = billing_api.member("acme", "bob")
    asked = bob.post("/v1/demo_requests", {"organization": "acme", "plan": "enterprise"})
    assert asked.status_code == 201, asked.text
    assert asked.json() == {"message": "Request received"}
    (request,) = billing_api.platform.get("/v1/demo_requests").json()["data"]
    assert (request["organization"], request["plan"], request["member"]) == (
        "acme",
        "enterprise",
        "bob",
    )
    assert billing_api.platform.get("/v1/demo_requests", organization="acme").json()["data"]
    problem(bob.get("/v1/demo_requests"), 403, "forbidden")
    problem(
        bob.post("/v1/demo_requests", {"organization": "acme", "plan": "basic"}),
        409,
        "not_sales_led",
    )
    problem(
        bob.post("/v1/demo_requests", {"organization": "acme", "plan": "gold"}), 400, "unknown_plan"
    )
    notices = bob.get("/v1/notices", organization="acme", kind="demo.requested").json()
    assert [n["payload"] for n in notices["data"]] == [{"plan": "enterprise"}]


def test_a_members_own_card_is_what_the_owner_sees(billing_api: ApiWorld) -> None:
    """ACL-1: a billing admin and the owner see the same subscription; the team of
    ACME has three members, within every plan's seats."""
    make_organization(billing_api, ACME)
    alice, bob = billing_api.member("acme", "alice"), billing_api.member("acme", "bob")
    subscribe(billing_api, alice)
    assert the_subscription(alice) == the_subscription(bob)


def test_an_idempotency_key_opens_one_checkout(billing_api: ApiWorld) -> None:
    """SUB-3: a retried subscribe request with the same Idempotency-Key returns the same
    checkout; the provider is asked once."""
    make_organization(billing_api)
    body = {"organization": "acme", "plan": "basic"}
    first = billing_api.platform.post("/v1/subscriptions", body, {"Idempotency-Key": "sub-1"})
    again = billing_api.platform.post("/v1/subscriptions", body, {"Idempotency-Key": "sub-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert billing_api.world.count(CheckoutSession) == 1
