"""A plan's own trial that converts (SUB-15) and billing anchors (SUB-16) through the API,
on SQLite and PostgreSQL (the `engine` fixture marks these `db`): the trial begins with
the card on file and charges nothing, converts at its end (paid: active; declined:
past_due), reminds 3 days before, and canceled during it ends with nothing charged; an
anchor prorates the first period; every refusal is a clear 4xx that changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import CheckoutSession, Invoice, PaymentMethod, Subscription
from tabkeeper.db.tables_sandbox import SandboxCharge
from tests.api.billing import (
    ACME,
    CATALOG,
    make_organization,
    pay,
    problem,
    start_checkout,
    the_subscription,
)
from tests.api.conftest import ApiWorld, make_api_world
from tests.integration.conftest import JAN_1

TRIAL_CATALOG: dict[str, Any] = {
    **CATALOG,
    "plans": {
        **CATALOG["plans"],
        "pro_trial": {"name": "Pro with trial", "price": "60.00", "trial_days": 14, "rank": 2,
                      "limits": {"agents": 3, "seats": 10}},
    },
}  # fmt: skip
JAN_15 = JAN_1 + timedelta(days=14)


@pytest.fixture
def trials(engine: Engine) -> ApiWorld:
    world = make_api_world(engine)
    imported = world.platform.post("/v1/catalog", {"catalog": TRIAL_CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(world, ACME)
    return world


def _save_card(trials: ApiWorld, card: str = "card_ok") -> None:
    saved = trials.platform.post("/v1/payment_methods", {"organization": "acme", "card": card})
    assert saved.status_code == 201, saved.text


def _start_trial(trials: ApiWorld) -> dict[str, Any]:
    response = trials.platform.post(
        "/v1/subscriptions", {"organization": "acme", "plan": "pro_trial"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["checkout"]["status"] == "completed" and body["checkout"]["url"] is None
    assert body["checkout"]["amount_minor"] == 0
    return body["subscription"]


def test_sub15_trial_converts_and_is_charged_at_its_end(trials: ApiWorld) -> None:
    """SUB-15: with a card on file the plan's trial begins at once (trialing, no invoice,
    no charge); 3 days before its end subscription.trial_ending goes out once; at its end
    the first period is invoiced and charged: active."""
    _save_card(trials)
    card = _start_trial(trials)
    assert (card["state"], card["plan"]) == ("trialing", "pro_trial")
    assert card["trial_ends_at"] == "2026-01-15T00:00:00Z"
    assert trials.world.count(Invoice) == trials.world.charges() == 0
    trials.world.worker().run_until(JAN_15 - timedelta(days=3))
    assert trials.world.notices("subscription.trial_ending") == 1
    trials.world.worker().run_until(JAN_15 + timedelta(hours=1))
    card = the_subscription(trials.platform)
    assert (card["state"], card["period_start"]) == ("active", "2026-01-15T00:00:00Z")
    assert card["period_end"] == "2026-02-15T00:00:00Z"
    assert trials.world.count(Invoice, Invoice.status == "paid", Invoice.total_minor == 6000) == 1
    assert trials.world.count(SandboxCharge, SandboxCharge.amount_minor == 6000) == 1
    assert trials.world.notices("subscription.trial_ending") == 1
    assert trials.world.notices("subscription.trial_converted") == 1
    trials.world.worker().run_until(JAN_15 + timedelta(hours=1))  # INV-4: once
    assert trials.world.count(Invoice) == trials.world.charges() == 1
    assert trials.world.notices("subscription.trial_converted") == 1


def test_sub15_a_declined_charge_at_the_end_makes_it_past_due(trials: ApiWorld) -> None:
    """SUB-15, SUB-8: the card saved for the trial declines at its end: past_due, the
    invoice open."""
    _save_card(trials, "card_fails_later")
    _start_trial(trials)
    trials.world.worker().run_until(JAN_15 + timedelta(hours=1))
    assert the_subscription(trials.platform)["state"] == "past_due"
    assert trials.world.count(Invoice, Invoice.status == "open", Invoice.amount_due_minor == 6000)


def test_sub15_canceled_during_the_trial_ends_with_nothing_charged(trials: ApiWorld) -> None:
    """SUB-15: canceling during the trial ends it at once; its end converts nothing."""
    _save_card(trials)
    card = _start_trial(trials)
    canceled = trials.platform.post(f"/v1/subscriptions/{card['id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["state"] == "canceled"
    trials.world.worker().run_until(JAN_15 + timedelta(days=40))
    assert the_subscription(trials.platform)["state"] == "canceled"
    assert trials.world.count(Invoice) == trials.world.charges() == 0
    assert trials.world.notices("subscription.trial_ending") == 0


def test_sub15_a_trial_without_a_card_is_refused_and_changes_nothing(trials: ApiWorld) -> None:
    """SUB-15: the trial begins with a payment method; without one on file the request is
    refused (409 payment_method_required) and nothing is made."""
    body = {"organization": "acme", "plan": "pro_trial"}
    problem(trials.platform.post("/v1/subscriptions", body), 409, "payment_method_required")
    assert trials.world.count(CheckoutSession) == trials.world.count(Subscription) == 0


def test_tri_the_platform_trial_still_cannot_be_canceled(engine: Engine) -> None:
    """TRI-1..4 unchanged: the platform's free trial has no cancel (illegal_transition)."""
    world = make_api_world(engine, {"trial": {"days": 14, "sessions": 50, "plan": "trial"}})
    assert world.platform.post("/v1/catalog", {"catalog": TRIAL_CATALOG}).status_code == 201
    make_organization(world, ACME)
    card = the_subscription(world.platform)
    assert card["state"] == "trialing"
    refused = world.platform.post(f"/v1/subscriptions/{card['id']}/cancel")
    problem(refused, 409, "illegal_transition")
    assert the_subscription(world.platform)["state"] == "trialing"


def test_sub16_an_anchor_prorates_the_first_period(trials: ApiWorld) -> None:
    """SUB-16: anchor 15 on Jan 1: the first period is the grid's Dec 15 – Jan 15 (31
    days), entered on Jan 1, second proration: 30.00 × 14/31 = 13.548… -> 1355; the next
    periods run from the 15th."""
    checkout = start_checkout(trials.platform, anchor=15)
    assert checkout["amount_minor"] == 1355
    assert pay(trials, checkout, "card_ok").status_code == 303
    card = the_subscription(trials.platform)
    assert (card["period_start"], card["period_end"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-15T00:00:00Z",
    )
    trials.world.worker().run_until(JAN_15 + timedelta(hours=1))
    card = the_subscription(trials.platform)
    assert (card["period_start"], card["period_end"]) == (
        "2026-01-15T00:00:00Z",
        "2026-02-15T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("anchor", "status", "code"),
    [
        (0, 400, "invalid_anchor"),
        (32, 400, "invalid_anchor"),
        (-1, 400, "invalid_anchor"),
        (10**9, 400, "invalid_anchor"),
        ("1", 422, "invalid_request"),
        (True, 422, "invalid_request"),
        (1.5, 422, "invalid_request"),
    ],
)
def test_sub16_bad_anchors_are_refused_and_change_nothing(
    trials: ApiWorld, anchor: object, status: int, code: str
) -> None:
    """SUB-16: an anchor is a day of the month 1..31: tried 0, 32, -1, 10^9 (400
    invalid_anchor), "1", true and 1.5 (422: not a whole number); no checkout, no
    subscription, no invoice, no payment method."""
    body = {"organization": "acme", "plan": "basic", "anchor": anchor}
    problem(trials.platform.post("/v1/subscriptions", body), status, code)
    assert trials.world.count(CheckoutSession) == trials.world.count(Subscription) == 0
    assert trials.world.count(Invoice) == trials.world.count(PaymentMethod) == 0


def test_sub15_no_second_trial_after_a_canceled_one(trials: ApiWorld) -> None:
    """SUB-15 with TRI-4's rule: a trial is had once; after a canceled trial the plan is
    billed at once through checkout (60.00, no trial)."""
    _save_card(trials)
    card = _start_trial(trials)
    trials.platform.post(f"/v1/subscriptions/{card['id']}/cancel")
    checkout = start_checkout(trials.platform, plan="pro_trial")
    assert checkout["amount_minor"] == 6000
    assert pay(trials, checkout, "card_ok").status_code == 303
    assert the_subscription(trials.platform)["state"] == "active"
