"""CAT-9: the platform puts an organization on any plan, sales-led included, at the catalog
or a negotiated price, charged to the card on file or invoiced for manual payment; the
demo request shows as handled; Enterprise-only add-ons can be bought afterwards (CAT-5).

Bad assignments tried here, each with every row of every table compared before and after
(on SQLite, and on PostgreSQL under `make test`): an unknown plan; a negative price; a
malformed price ("12,00"); a price with more decimals than USD ("1500.001"); a price as a
JSON number; a collection other than card | invoice ("cash"); `collection: card` with no
card on file; a member's portal session (the owner's); an unknown organization; an
organization whose paid subscription runs; a declined card.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import DemoRequest, Invoice, Subscription
from tests.api.billing import CATALOG, make_billing_world, make_organization, problem
from tests.api.conftest import ApiWorld
from tests.integration.test_refusals import _state

ENTERPRISE_MAX = {
    "name": "Enterprise Max",
    "price": "200.00",
    "adds": {"agents": 5},
    "requires_plans": ["enterprise"],
}
ASSIGN = "/v1/organizations/acme/assign_plan"


def _world(engine: Engine, settings: dict[str, Any] | None = None) -> ApiWorld:
    api = make_billing_world(engine, settings)
    catalog = {
        **CATALOG,
        "plans": {**CATALOG["plans"], "enterprise": {
            "name": "Enterprise", "price": "500.00", "sales_led": True, "rank": 3,
            "limits": {"agents": 10, "seats": 20},
        }},
        "addons": {**CATALOG["addons"], "max": ENTERPRISE_MAX},
    }  # fmt: skip
    imported = api.platform.post("/v1/catalog", {"catalog": catalog})
    assert imported.status_code == 201, imported.text
    make_organization(api)
    return api


@pytest.fixture
def sales(engine: Engine) -> ApiWorld:
    return _world(engine)


def _demo(api: ApiWorld) -> None:
    bob = api.member("acme", "bob")
    asked = bob.post("/v1/demo_requests", {"organization": "acme", "plan": "enterprise"})
    assert asked.status_code == 201, asked.text


def test_cat9_assign_enterprise_at_a_negotiated_price_invoiced(sales: ApiWorld) -> None:
    """CAT-9: collection invoice: active at once, the invoice open at the negotiated price
    and never charged; the demo request handled; the renewal bills the negotiated price
    and stays open without making the subscription past_due."""
    _demo(sales)
    assigned = sales.platform.post(
        ASSIGN, {"plan": "enterprise", "price": "1500.00", "collection": "invoice"}
    )
    assert assigned.status_code == 201, assigned.text
    body = assigned.json()
    assert (body["plan"], body["price_minor"], body["negotiated"], body["collection"]) == (
        "enterprise", 150000, True, "invoice",
    )  # fmt: skip
    assert body["invoice"]["status"] == "open" and body["invoice"]["amount_due_minor"] == 150000
    assert body["invoice"]["number"] == "INV-000001"
    assert body["subscription"]["state"] == "active"
    assert body["demo_requests_handled"] == 1
    (request,) = sales.platform.get("/v1/demo_requests").json()["data"]
    assert request["status"] == "handled" and request["handled_at"] is not None
    (line,) = sales.platform.get(f"/v1/invoices/{body['invoice']['id']}").json()["lines"]
    assert (line["description"], line["amount_minor"]) == ("Enterprise (Jan 1 – Feb 1)", 150000)
    assert sales.world.charges() == 0
    sales.world.clock.advance(timedelta(days=31, hours=1))
    sales.world.worker().tick()
    renewal = sales.platform.get("/v1/invoices", organization="acme", status="open").json()
    assert [i["total_minor"] for i in renewal["data"]] == [150000, 150000]
    assert sales.world.charges() == 0
    state = sales.platform.get("/v1/subscriptions", organization="acme").json()["data"]
    assert state[0]["state"] == "active"


def test_cat9_assign_by_card_then_buy_the_enterprise_only_add_on(sales: ApiWorld) -> None:
    """CAT-9, CAT-5: collection card charges the first invoice like a checkout; the add-on
    that requires Enterprise, refused before, can then be bought."""
    added = sales.platform.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    assert added.status_code == 201, added.text
    slot = {"organization": "acme", "addon": "max", "quantity": 1}
    assert sales.platform.post("/v1/addons/add", slot).status_code == 409  # no Enterprise yet
    assigned = sales.platform.post(ASSIGN, {"plan": "enterprise", "collection": "card"})
    assert assigned.status_code == 201, assigned.text
    body = assigned.json()
    assert (body["price_minor"], body["negotiated"]) == (50000, False)
    assert body["invoice"]["status"] == "paid"
    assert sales.world.charges() == 1
    bought = sales.platform.post("/v1/addons/add", slot)
    assert bought.status_code == 200, bought.text
    sales.world.worker().tick()
    invoices = sales.platform.get("/v1/invoices", organization="acme").json()["data"]
    assert [(i["total_minor"], i["status"]) for i in invoices] == [(50000, "paid"), (20000, "paid")]
    assert sales.world.charges() == 2


def test_cat9_assign_from_a_trial(engine: Engine) -> None:
    """CAT-9: an organization in its trial is put on the plan; the trial ends there."""
    api = _world(engine, {"trial": {"days": 14, "sessions": 50, "plan": "trial"}})
    assigned = api.platform.post(
        ASSIGN, {"plan": "enterprise", "price": "900.00", "collection": "invoice"}
    )
    assert assigned.status_code == 201, assigned.text
    subscription = assigned.json()["subscription"]
    assert (subscription["state"], subscription["plan"]) == ("active", "enterprise")


def test_cat9_declined_card_starts_nothing(sales: ApiWorld) -> None:
    """CAT-9: a card that is declined when charged: 409 card_declined, no subscription,
    no invoice (its draft is removed), the demo request still pending."""
    _demo(sales)
    added = sales.platform.post(
        "/v1/payment_methods", {"organization": "acme", "card": "card_fails_later"}
    )
    assert added.status_code == 201, added.text
    problem(sales.platform.post(ASSIGN, {"plan": "enterprise", "collection": "card"}), 409,
            "card_declined")  # fmt: skip
    assert sales.world.count(Subscription) == 0
    assert sales.world.count(Invoice) == 0
    assert sales.world.count(DemoRequest, DemoRequest.status == "pending") == 1
    # Another card, tried at the same instant: charged, and the invoice is INV-000001.
    added = sales.platform.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    assert added.status_code == 201, added.text
    assigned = sales.platform.post(ASSIGN, {"plan": "enterprise", "collection": "card"})
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["invoice"]["number"] == "INV-000001"
    assert assigned.json()["invoice"]["status"] == "paid"
    assert sales.world.count(DemoRequest, DemoRequest.status == "handled") == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan": "gold", "collection": "invoice"}, 400, "unknown_plan"),
        ({"plan": "enterprise", "price": "-5.00", "collection": "invoice"}, 400, "invalid_price"),
        ({"plan": "enterprise", "price": "12,00", "collection": "invoice"}, 400, "invalid_price"),
        ({"plan": "enterprise", "price": "1500.001", "collection": "invoice"}, 400,
         "invalid_price"),
        ({"plan": "enterprise", "price": "99999999999.00", "collection": "invoice"}, 400,
         "invalid_price"),
        ({"plan": "enterprise", "price": 1500, "collection": "invoice"}, 422, "invalid_request"),
        ({"plan": "enterprise", "collection": "cash"}, 400, "invalid_collection"),
        ({"plan": "enterprise"}, 422, "invalid_request"),
        ({"plan": "enterprise", "collection": "card"}, 409, "payment_method_required"),
    ],
)  # fmt: skip
def test_cat9_bad_assignments_change_nothing(
    sales: ApiWorld, body: dict[str, Any], status: int, code: str
) -> None:
    """CAT-9: each bad assignment is a clear problem and no row of any table changes."""
    _demo(sales)
    before = _state(sales.world)
    problem(sales.platform.post(ASSIGN, body), status, code)
    assert _state(sales.world) == before


def test_cat9_only_the_platform_assigns(sales: ApiWorld) -> None:
    """CAT-9: a member's portal session (even the owner's) is 403; another platform's or
    an unknown organization is 404; nothing changes."""
    owner = sales.member("acme", "alice")
    before = _state(sales.world)
    problem(owner.post(ASSIGN, {"plan": "enterprise", "collection": "invoice"}), 403,
            "forbidden")  # fmt: skip
    problem(
        sales.platform.post(
            "/v1/organizations/nobody/assign_plan", {"plan": "enterprise", "collection": "invoice"}
        ),
        404,
        "not_found",
    )
    assert _state(sales.world) == before


def test_cat9_a_running_paid_subscription_is_refused(sales: ApiWorld) -> None:
    """CAT-9: with a paid subscription running the platform changes the plan instead:
    409 already_subscribed, nothing changed."""
    assigned = sales.platform.post(ASSIGN, {"plan": "pro", "collection": "invoice"})
    assert assigned.status_code == 201, assigned.text
    before = _state(sales.world)
    problem(sales.platform.post(ASSIGN, {"plan": "enterprise", "collection": "invoice"}), 409,
            "already_subscribed")  # fmt: skip
    assert _state(sales.world) == before


def test_cat9_a_negotiated_price_of_zero_charges_nothing(sales: ApiWorld) -> None:
    """CAT-9: at "0.00" the first invoice owes nothing: paid at once, no charge, no
    draft left behind."""
    added = sales.platform.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    assert added.status_code == 201, added.text
    assigned = sales.platform.post(
        ASSIGN, {"plan": "enterprise", "price": "0.00", "collection": "card"}
    )
    assert assigned.status_code == 201, assigned.text
    invoice = assigned.json()["invoice"]
    assert (invoice["number"], invoice["status"], invoice["amount_due_minor"]) == (
        "INV-000001", "paid", 0,
    )  # fmt: skip
    assert sales.world.charges() == 0
    assert sales.world.count(Invoice, Invoice.status == "draft") == 0


def test_cat9_assign_after_the_subscription_ended(sales: ApiWorld) -> None:
    """CAT-9: a canceled organization (its period over) is put on the plan again: a new
    period anchored at the assignment, at the negotiated price."""
    first = sales.platform.post(ASSIGN, {"plan": "pro", "collection": "invoice"}).json()
    subscription_id = first["subscription"]["id"]
    canceled = sales.platform.post(f"/v1/subscriptions/{subscription_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    sales.world.clock.advance(timedelta(days=32))
    sales.world.worker().tick()
    ended = sales.platform.get(f"/v1/subscriptions/{subscription_id}").json()
    assert ended["state"] == "canceled"
    again = sales.platform.post(
        ASSIGN, {"plan": "enterprise", "price": "700.00", "collection": "invoice"}
    )
    assert again.status_code == 201, again.text
    body = again.json()
    assert (body["subscription"]["state"], body["subscription"]["plan"]) == (
        "active", "enterprise",
    )  # fmt: skip
    assert body["invoice"]["amount_due_minor"] == 70000
