"""Add-on slots through the API (ADD-1..4, CAT-5, INV-1, ACL-1, ACL-3): the Add-ons panel,
a quote, add (the prorated invoice at once, collected by the billing clock), remove (from
the next billing date, no refund).

Bad requests tried, each answering problem+json and changing nothing: a billing admin and
a plain member (403), another organization's owner (404), 0 slots and 1,001 slots (422),
an unknown add-on (400), an add-on the plan does not allow (409), removing more than
owned, below what is in use, on a trial, on a subscription canceled at the period's end,
and on a past_due one (409).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.api.billing import (
    ACME,
    GLOBEX,
    make_organization,
    problem,
    subscribe,
    the_subscription,
)
from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.conftest import ApiWorld, Client, make_api_world
from tests.integration.conftest import FEB_1, JAN_1, every_row

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "addons": {
        **BILLING_CATALOG["addons"],
        "pro_max": {"name": "Pro Max", "price": "200.00", "requires_plans": ["pro"]},
    },
}
"""tests/api/billing.py's catalog (Basic 30.00: 1 agent) plus an add-on for Pro only."""
JAN_11 = JAN_1 + timedelta(days=10)
ADD = {"organization": "acme", "addon": "extra_agent", "quantity": 2}


def addon_api(engine: Engine, settings: dict[str, Any] | None = None) -> ApiWorld:
    api = make_api_world(engine, settings)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    make_organization(api, GLOBEX)
    return api


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme on Basic since Jan 1 (alice owner, bob billing admin, carol member); Jan 11."""
    api = addon_api(engine)
    subscribe(api, api.member("acme", "alice"))
    api.world.clock.set(JAN_11)
    return api


@pytest.fixture
def alice(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine)


def _refused(api: ApiWorld, response: Any, status: int, code: str, before: Any) -> str:
    detail: str = problem(response, status, code)["detail"]
    assert _state(api) == before
    return detail


def test_the_quote_shows_price_total_and_amount_due(api: ApiWorld, alice: Client) -> None:
    """ADD-2: before confirming, price per slot, the new monthly total and the prorated
    amount due now (2 × 10.00 × 21/31 of January = 13.548… → 1355); nothing is bought."""
    before = _state(api)
    quote = alice.post("/v1/addons/quote", ADD)
    assert quote.status_code == 200, quote.text
    assert quote.json() == {
        "organization": "acme",
        "addon": "extra_agent",
        "addon_name": "Extra agent",
        "quantity": 2,
        "price_per_slot_minor": 1000,
        "currency": "USD",
        "slots_after": 2,
        "interval_total_before_minor": 3000,
        "interval_total_after_minor": 5000,
        "prorated_minor": 1355,
        "amount_due_minor": 1355,
        "period_end": "2026-02-01T00:00:00Z",
    }
    assert _state(api) == before


def test_the_owner_adds_slots_and_the_clock_collects_them(api: ApiWorld, alice: Client) -> None:
    """ADD-1, ADD-2, INV-1: the owner adds 2 slots: "Slots added successfully.", capacity
    at once (a second agent fits), the prorated line on its own invoice, open until the
    billing clock collects it; the subscription card shows the slots."""
    added = alice.post("/v1/addons/add", ADD)
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["message"] == "Slots added successfully."
    assert (body["quantity"], body["quantity_next_period"]) == (2, 2)
    assert (body["interval_total_minor"], body["effective_at"]) == (5000, "2026-01-11T00:00:00Z")
    invoice = body["invoice"]
    assert (invoice["status"], invoice["total_minor"], invoice["amount_due_minor"]) == (
        "open",
        1355,
        1355,
    )
    (line,) = invoice["lines"]
    assert (line["kind"], line["quantity"], line["amount_minor"]) == ("proration", "2", 1355)
    assert line["description"] == "Extra agent × 2 (Jan 11 – Feb 1, prorated)"
    for agent in ("a1", "a2", "a3"):
        made = alice.post("/v1/agents", {"organization": "acme", "code": agent})
        assert made.status_code == 201, made.text
    assert the_subscription(alice)["addons"] == [
        {"code": "extra_agent", "quantity": 2, "quantity_next_period": 2}
    ]
    api.world.worker().tick()
    paid = alice.get(f"/v1/invoices/{invoice['id']}").json()
    assert (paid["status"], paid["paid_at"]) == ("paid", "2026-01-11T00:00:00Z")


def test_the_panel_shows_active_cards_and_what_the_plan_allows(
    api: ApiWorld, alice: Client
) -> None:
    """PRT-1, CAT-5: active add-on cards (price per slot, slots now and from the next
    billing date, what a slot adds), the add-ons Basic allows (not Pro Max), the total."""
    alice.post("/v1/addons/add", {**ADD, "quantity": 3})
    alice.post("/v1/addons/remove", {**ADD, "quantity": 1})
    panel = alice.get("/v1/addons", organization="acme")
    assert panel.status_code == 200, panel.text
    extra_agent = {
        "code": "extra_agent",
        "name": "Extra agent",
        "price_per_slot_minor": 1000,
        "currency": "USD",
        "interval": "month",
        "adds": {"agents": 1},
        "requires_plans": None,
    }
    assert panel.json() == {
        "organization": "acme",
        "plan": "basic",
        "plan_name": "Basic",
        "currency": "USD",
        "interval": "month",
        "next_billing_at": "2026-02-01T00:00:00Z",
        "interval_total_minor": 3000 + 2 * 1000,
        "active": [{**extra_agent, "quantity": 3, "quantity_next_period": 2}],
        "available": [extra_agent],
    }


def test_removal_waits_for_the_renewal_and_refunds_nothing(api: ApiWorld, alice: Client) -> None:
    """ADD-3, INV-1: "Slots removed successfully."; no invoice, no account credit; the
    renewal bills the plan and the slots left, in advance."""
    alice.post("/v1/addons/add", ADD)
    invoices = len(alice.get("/v1/invoices", organization="acme").json()["data"])
    removed = alice.post("/v1/addons/remove", {**ADD, "quantity": 1})
    assert removed.status_code == 200, removed.text
    assert removed.json() == {
        "message": "Slots removed successfully.",
        "organization": "acme",
        "addon": "extra_agent",
        "quantity": 2,
        "quantity_next_period": 1,
        "interval_total_minor": 4000,
        "effective_at": "2026-02-01T00:00:00Z",
        "invoice": None,
    }
    assert len(alice.get("/v1/invoices", organization="acme").json()["data"]) == invoices
    assert alice.get("/v1/organizations/acme").json()["account_credit_minor"] == 0
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    platform = api.platform
    renewal = platform.get("/v1/invoices", organization="acme").json()["data"][-1]
    lines = platform.get(f"/v1/invoices/{renewal['id']}").json()["lines"]
    assert [(line["kind"], line["amount_minor"]) for line in lines] == [
        ("subscription", 3000),
        ("addon", 1000),
    ]
    assert the_subscription(platform)["addons"] == [
        {"code": "extra_agent", "quantity": 1, "quantity_next_period": 1}
    ]


def test_the_platform_key_may_manage_slots(api: ApiWorld) -> None:
    """ACL-1: the platform's key may do what the owner does."""
    added = api.platform.post("/v1/addons/add", ADD)
    assert added.status_code == 200, added.text
    assert api.platform.get("/v1/addons", organization="acme").json()["active"][0]["quantity"] == 2


def test_an_idempotency_key_buys_once(api: ApiWorld, alice: Client) -> None:
    """INV-4: a retried add with the same Idempotency-Key returns the first answer and
    issues no second invoice."""
    first = alice.post("/v1/addons/add", ADD, {"Idempotency-Key": "slots-1"})
    again = alice.post("/v1/addons/add", ADD, {"Idempotency-Key": "slots-1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(alice.get("/v1/invoices", organization="acme").json()["data"]) == 2
    assert the_subscription(alice)["addons"][0]["quantity"] == 2


OPERATIONS = [
    ("GET", "/v1/addons", None),
    ("POST", "/v1/addons/quote", ADD),
    ("POST", "/v1/addons/add", ADD),
    ("POST", "/v1/addons/remove", {**ADD, "quantity": 1}),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
@pytest.mark.parametrize(
    ("organization", "member", "status", "code"),
    [
        ("acme", "bob", 403, "forbidden"),
        ("acme", "carol", 403, "forbidden"),
        ("globex", "gina", 404, "not_found"),
    ],
)
def test_only_the_owner_may(
    api: ApiWorld,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    organization: str,
    member: str,
    status: int,
    code: str,
) -> None:
    """ADD-1, ACL-1: add-ons are the owner's alone: a billing admin and a plain member get
    403; ACL-3: another organization's owner gets 404, with nothing of acme's."""
    api.platform.post("/v1/addons/add", {**ADD, "quantity": 1})
    caller = api.member(organization, member)
    before = _state(api)
    get = method == "GET"
    response = caller.get(path, organization="acme") if get else caller.post(path, body)
    detail = _refused(api, response, status, code, before)
    assert "extra" not in detail.lower()


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "detail"),
    [
        ("/v1/addons/add", {**ADD, "quantity": 0}, 422, "invalid_request", "quantity"),
        ("/v1/addons/add", {**ADD, "quantity": 1001}, 422, "invalid_request", "quantity"),
        ("/v1/addons/quote", {**ADD, "quantity": 0}, 422, "invalid_request", "quantity"),
        ("/v1/addons/remove", {**ADD, "quantity": 1001}, 422, "invalid_request", "quantity"),
        ("/v1/addons/add", {**ADD, "addon": "gold"}, 400, "unknown_addon", "unknown add-on"),
        ("/v1/addons/add", {**ADD, "colour": "red"}, 422, "invalid_request", "colour"),
        (
            "/v1/addons/add",
            {**ADD, "addon": "pro_max"},
            409,
            "addon_not_allowed",
            "Pro Max is available on Pro only, not on Basic; upgrade to add it.",
        ),
        (
            "/v1/addons/remove",
            {**ADD, "quantity": 2},
            409,
            "not_enough_slots",
            "The subscription has 1 slot of Extra agent from the next billing date",
        ),
        ("/v1/addons/add", {**ADD, "organization": "nobody"}, 404, "not_found", "organization"),
    ],
)
def test_bad_requests_change_nothing(
    api: ApiWorld, alice: Client, path: str, body: Any, status: int, code: str, detail: str
) -> None:
    """ADD-2, ADD-3, CAT-5. Bad input tried: 0 slots, 1,001 slots, an unknown add-on, an
    unknown field, an add-on the plan does not allow, removing more than owned (1 slot),
    an unknown organization."""
    alice.post("/v1/addons/add", {**ADD, "quantity": 1})
    before = _state(api)
    assert detail in _refused(api, alice.post(path, body), status, code, before)


def test_removal_below_use_says_how_many_to_archive(api: ApiWorld, alice: Client) -> None:
    """ADD-3: refused below what is in use, with the count to archive or delete first."""
    alice.post("/v1/addons/add", ADD)
    for agent in ("a1", "a2", "a3"):
        alice.post("/v1/agents", {"organization": "acme", "code": agent})
    before = _state(api)
    detail = _refused(api, alice.post("/v1/addons/remove", ADD), 409, "capacity_in_use", before)
    assert detail == (
        "From the next billing date Basic and its remaining slots allow 1 agent; archive or "
        "delete 2 agents first."
    )


def test_a_trial_cannot_buy_slots(engine: Engine) -> None:
    """ADD-1: only on an active subscription. Bad input tried: a trial."""
    api = addon_api(engine, {"trial": {"days": 14, "sessions": 50, "plan": "trial"}})
    alice = api.member("acme", "alice")
    before = _state(api)
    detail = _refused(api, alice.post("/v1/addons/add", ADD), 409, "not_active", before)
    assert "this one is trialing" in detail


def test_a_canceled_or_past_due_subscription_cannot_change_slots(
    api: ApiWorld, alice: Client
) -> None:
    """ADD-1. Bad input tried: canceled at the period's end; then, resumed, past_due after
    the renewal could not be collected."""
    card = the_subscription(alice)
    assert alice.post(f"/v1/subscriptions/{card['id']}/cancel").status_code == 200
    before = _state(api)
    _refused(api, alice.post("/v1/addons/add", ADD), 409, "cancel_pending", before)
    assert alice.post(f"/v1/subscriptions/{card['id']}/resume").status_code == 200
    card_on_file = {"organization": "acme", "card": "card_fails_later"}
    assert alice.post("/v1/payment_methods", card_on_file).status_code == 201
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    assert the_subscription(api.platform)["state"] == "past_due"
    alice = api.member("acme", "alice")
    before = _state(api)
    detail = _refused(api, alice.post("/v1/addons/remove", ADD), 409, "not_active", before)
    assert "this one is past due" in detail
