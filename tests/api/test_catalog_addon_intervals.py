"""Add-ons at their own interval through the API, on SQLite and PostgreSQL (CAT-8, SUB-14).

- CAT-8: POST /v1/catalog with an add-on offered with a plan of an interval it has no
  price for is refused (400 invalid_config naming the path) and nothing is stored.
  Bad catalogs tried: a monthly-only add-on offered with a yearly plan; a yearly-only one
  (`price: {year: ...}`) and a plain price with `interval: year` offered with monthly
  plans; a negative yearly price; an unknown interval key.
- SUB-14: an immediate change from a monthly to a yearly plan carries the add-on slots
  (a credit for their unused part, a charge at the yearly price); a change to an interval
  a held add-on has no price for is refused (409 addon_interval_unpriced, naming the
  add-on) with nothing changed.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.api.billing import ACME, make_organization, problem, subscribe, the_subscription
from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.conftest import ApiWorld, make_api_world
from tests.integration.conftest import FEB_1, JAN_1, every_row

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "plans": {
        **BILLING_CATALOG["plans"],
        "basic_yearly": {
            "name": "Basic yearly", "price": "365.00", "interval": "year",
            "limits": {"agents": 1, "seats": 5, "phone_numbers": 1}, "rank": 2,
        },
    },
    "addons": {
        "extra_agent": {
            "name": "Extra agent", "price": {"month": "10.00", "year": "100.00"},
            "adds": {"agents": 1},
        },
        "support": {"name": "Priority support", "price": "15.00", "requires_plans": ["basic"]},
    },
}  # fmt: skip
"""tests/api/billing.py's monthly plans, a yearly plan, an add-on priced for both
intervals and a monthly-only one sold with Basic only: valid (CAT-8)."""
JAN_11 = JAN_1 + timedelta(days=10)


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine)


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    api = make_api_world(engine)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    return api


def _bad(change: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(CATALOG)
    document["addons"]["extra_agent"].update(change)
    return document


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        pytest.param(
            _bad({"price": {"month": "10.00"}}),
            "catalog.addons.extra_agent.price: no yearly price, but it is offered with plan "
            "basic_yearly (year)",
            id="monthly-only-with-a-yearly-plan",
        ),
        pytest.param(
            _bad({"price": {"year": "50.00"}}),
            "catalog.addons.extra_agent.price: no monthly price, but it is offered with plan "
            "trial (month)",
            id="yearly-only-with-monthly-plans",
        ),
        pytest.param(
            _bad({"price": "50.00", "interval": "year"}),
            "catalog.addons.extra_agent.price: no monthly price, but it is offered with plan "
            "trial (month)",
            id="interval-year-with-monthly-plans",
        ),
        pytest.param(
            _bad({"price": {"month": "10.00", "year": "-1.00"}}),
            "catalog.addons.extra_agent.price.year: must be at least 0, got -1.00",
            id="negative-yearly-price",
        ),
        pytest.param(
            _bad({"price": {"month": "10.00", "week": "3.00"}}),
            "catalog.addons.extra_agent.price.week: unknown interval 'week'; expected month "
            "or year",
            id="unknown-interval-key",
        ),
    ],
)
def test_cat8_catalog_import_refused_and_nothing_stored(
    api: ApiWorld, document: dict[str, Any], detail: str
) -> None:
    """CAT-8: the import is refused with a 400 naming the path; no new catalog version,
    nothing else written either."""
    before_catalog = api.platform.get("/v1/catalog").json()
    before = _state(api)
    refused = problem(
        api.platform.post("/v1/catalog", {"catalog": document}), 400, "invalid_config"
    )
    assert refused["detail"] == detail
    assert _state(api) == before
    assert api.platform.get("/v1/catalog").json() == before_catalog


def test_sub14_interval_change_carries_the_addons(api: ApiWorld) -> None:
    """SUB-14, CAT-8: acme on Basic (30.00 a month) since Jan 1 adds 2 Extra agent slots
    on Jan 11 (10.00 a month each) and moves to Basic yearly at once, on Jan 11: the old
    period ends (21 of January's 31 days unused, proration second) with a credit for the
    plan and for the slots, the new year is billed in full, the slots at 100.00 a year:
    -3000 x 21/31 = -2032.26 -> -2032; -2000 x 21/31 = -1354.84 -> -1355;
    Basic yearly 36500; Extra agent x 2 at 100.00: 20000. Total 53113."""
    alice = api.member("acme", "alice")
    subscribe(api, alice)
    api.world.clock.set(JAN_11)
    added = api.platform.post(
        "/v1/addons/add", {"organization": "acme", "addon": "extra_agent", "quantity": 2}
    )
    assert added.status_code == 200, added.text
    card = the_subscription(api.platform)
    changed = api.platform.post(
        f"/v1/subscriptions/{card['id']}/change", {"plan": "basic_yearly", "when": "immediately"}
    )
    assert changed.status_code == 200, changed.text
    invoices = api.platform.get("/v1/invoices", organization="acme").json()["data"]
    last = api.platform.get(f"/v1/invoices/{invoices[-1]['id']}").json()
    lines = [(line["kind"], line["description"], line["amount_minor"]) for line in last["lines"]]
    assert lines == [
        ("proration", "Unused time on Basic (Jan 11 – Feb 1)", -2032),
        ("proration", "Unused time on Extra agent × 2 (Jan 11 – Feb 1)", -1355),
        ("subscription", "Basic yearly (Jan 11, 2026 – Jan 11, 2027)", 36500),
        ("addon", "Extra agent × 2 (Jan 11, 2026 – Jan 11, 2027)", 20000),
    ]
    assert last["total_minor"] == 53113
    panel = api.platform.get("/v1/addons", organization="acme").json()
    assert panel["interval"] == "year"
    assert panel["active"][0]["price_per_slot_minor"] == 10000
    assert panel["interval_total_minor"] == 36500 + 20000


def test_sub14_interval_change_refused_for_an_addon_without_that_price(api: ApiWorld) -> None:
    """SUB-14: acme holds a Priority support slot (15.00 a month, no yearly price): a
    change to Basic yearly, immediately or at the period's end, is refused naming the
    add-on (409 addon_interval_unpriced); nothing changed."""
    alice = api.member("acme", "alice")
    subscribe(api, alice)
    api.world.clock.set(JAN_11)
    added = api.platform.post(
        "/v1/addons/add", {"organization": "acme", "addon": "support", "quantity": 1}
    )
    assert added.status_code == 200, added.text
    card = the_subscription(api.platform)
    before = _state(api)
    for when in ("immediately", "period_end"):
        refused = problem(
            api.platform.post(
                f"/v1/subscriptions/{card['id']}/change", {"plan": "basic_yearly", "when": when}
            ),
            409,
            "addon_interval_unpriced",
        )
        assert refused["detail"] == (
            "Priority support has no yearly price, so the subscription cannot move to Basic "
            "yearly (year) while it keeps 1 slot of it; remove it first or choose a plan "
            "billed per month."
        )
        assert _state(api) == before
    assert the_subscription(api.platform)["plan"] == "basic"


def test_sub14_scheduled_interval_change_fails_when_an_unpriced_addon_was_added(
    api: ApiWorld,
) -> None:
    """SUB-14, CAT-8 at the clock: acme schedules Basic yearly for the period's end, then
    buys a Priority support slot (monthly only). On Feb 1 the change fails
    (`subscription.change_failed`, reason addon_interval_unpriced) and the subscription
    renews on Basic with the slot at its monthly price: 3000 + 1500."""
    alice = api.member("acme", "alice")
    subscribe(api, alice)
    card = the_subscription(api.platform)
    changed = api.platform.post(
        f"/v1/subscriptions/{card['id']}/change", {"plan": "basic_yearly", "when": "period_end"}
    )
    assert changed.status_code == 200, changed.text
    api.world.clock.set(JAN_11)
    added = api.platform.post(
        "/v1/addons/add", {"organization": "acme", "addon": "support", "quantity": 1}
    )
    assert added.status_code == 200, added.text
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    after = the_subscription(api.platform)
    assert (after["plan"], after["upcoming"]) == ("basic", None)
    failed = api.platform.get("/v1/notices", kind="subscription.change_failed").json()["data"]
    assert len(failed) == 1
    assert failed[0]["payload"]["reason"] == "addon_interval_unpriced"
    invoices = api.platform.get("/v1/invoices", organization="acme").json()["data"]
    renewal = api.platform.get(f"/v1/invoices/{invoices[-1]['id']}").json()
    assert [line["amount_minor"] for line in renewal["lines"]] == [3000, 1500]
