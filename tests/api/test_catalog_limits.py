"""Issue 12 item 7 through the API, on SQLite and PostgreSQL: a catalog whose plan name an
invoice line cannot hold is refused at import (400, naming the path and the limit,
nothing stored); the longest name it accepts is charged on the checkout page and
invoiced, never a 500 after the money is taken (CAT-1, SUB-3, INV-2)."""

from __future__ import annotations

from sqlalchemy import Engine

from tabkeeper.domain.catalog_limits import NAME_MAX
from tests.api.billing import (
    CATALOG,
    make_billing_world,
    make_organization,
    pay,
    problem,
    start_checkout,
)
from tests.integration.test_refusals import _state


def _catalog(name: str) -> dict[str, object]:
    plan = {"name": name, "price": "99.00", "rank": 5, "limits": {"agents": 3, "seats": 10}}
    return {**CATALOG, "plans": {**CATALOG["plans"], "long": plan}}


def test_a_plan_name_too_long_for_an_invoice_is_refused_at_import(engine: Engine) -> None:
    api = make_billing_world(engine)
    before = _state(api.world)
    body = problem(api.platform.post("/v1/catalog", {"catalog": _catalog("N" * 291)}), 400,
                   "invalid_config")  # fmt: skip
    assert "catalog.plans.long.name: at most 160 characters" in body["detail"]
    assert _state(api.world) == before


def test_checkout_with_the_longest_name_is_invoiced(engine: Engine) -> None:
    api = make_billing_world(engine)
    imported = api.platform.post("/v1/catalog", {"catalog": _catalog("N" * NAME_MAX)})
    assert imported.status_code == 201, imported.text
    make_organization(api)
    checkout = start_checkout(api.member("acme", "alice"), plan="long")
    paid = pay(api, checkout, "card_ok")
    assert paid.status_code == 303, paid.text
    (invoice,) = api.platform.get("/v1/invoices", organization="acme").json()["data"]
    assert (invoice["number"], invoice["status"], invoice["total_minor"]) == (
        "INV-000001", "paid", 9900,
    )  # fmt: skip
    (line,) = api.platform.get(f"/v1/invoices/{invoice['id']}").json()["lines"]
    assert line["description"].startswith("N" * NAME_MAX + " (")
