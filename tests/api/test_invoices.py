"""Invoices through the API (INV-1, INV-2): lines and totals, the renewal the billing
clock makes, and paying an open invoice after a failed renewal (SUB-8)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.billing import make_organization, problem, subscribe, the_subscription
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import FEB_1


@pytest.fixture
def alice(billing_api: ApiWorld) -> Client:
    """acme's owner; acme subscribed to Basic (30.00 a month) on Jan 1 with card_ok."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    return alice


def renew(api: ApiWorld) -> Client:
    """Run the billing clock past Feb 1; a fresh session of alice (sessions last 1 hour)."""
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    return api.member("acme", "alice")


def test_an_invoice_shows_its_lines_and_totals(alice: Client) -> None:
    """INV-2: a numbered invoice whose lines (kind, description, quantity, unit amount,
    period) add up exactly to its total."""
    (listed,) = alice.get("/v1/invoices", organization="acme").json()["data"]
    assert listed["lines"] is None
    invoice = alice.get(f"/v1/invoices/{listed['id']}").json()
    assert invoice["number"] == "INV-000001" and invoice["status"] == "paid"
    (line,) = invoice["lines"]
    assert (line["kind"], line["quantity"], line["unit_amount"]) == ("subscription", "1", "30.00")
    assert line["description"].startswith("Basic")
    assert (line["period_start"], line["period_end"]) == (
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
    )
    assert sum(li["amount_minor"] for li in invoice["lines"]) == invoice["total_minor"] == 3000
    assert invoice["amount_due_minor"] == invoice["total_minor"] - invoice["credit_applied_minor"]
    assert {**invoice, "lines": None} == listed


def test_the_billing_clock_renews_and_the_invoice_shows_up(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-1, INV-2: the renewal invoice of Feb 1, numbered next, paid by the card on file."""
    alice = renew(billing_api)
    invoices = alice.get("/v1/invoices", organization="acme").json()["data"]
    assert [i["number"] for i in invoices] == ["INV-000001", "INV-000002"]
    renewal = alice.get(f"/v1/invoices/{invoices[1]['id']}").json()
    assert renewal["status"] == "paid"
    assert renewal["lines"][0]["period_start"] == "2026-02-01T00:00:00Z"
    card = the_subscription(alice)
    assert card["period_start"] == "2026-02-01T00:00:00Z"
    assert card["next_billing_at"] == "2026-03-01T00:00:00Z"
    assert len(alice.get("/v1/invoices", status="paid").json()["data"]) == 2
    assert alice.get("/v1/invoices", status="open").json()["data"] == []
    kinds = [n["kind"] for n in alice.get("/v1/notices", kind="invoice.issued").json()["data"]]
    assert kinds == ["invoice.issued", "invoice.issued"]


def test_pay_an_open_invoice_after_a_failed_renewal(billing_api: ApiWorld, alice: Client) -> None:
    """SUB-8, SUB-1: a failed renewal makes the subscription past_due ("Payment issue"
    with the "Payment pending" banner); paying the open invoice with a declined card is a
    409 payment_failed with the reason; with a good card it is paid and the subscription
    active again."""
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_fails_later"})
    alice = renew(billing_api)
    card = the_subscription(alice)
    assert (card["state"], card["badge"], card["payment_pending"]) == (
        "past_due",
        "Payment issue",
        True,
    )
    assert card["grace_ends_at"] == "2026-02-08T00:00:00Z"
    (open_invoice,) = alice.get("/v1/invoices", status="open").json()["data"]
    path = f"/v1/invoices/{open_invoice['id']}"
    failed = problem(alice.post(f"{path}/pay"), 409, "payment_failed")
    assert failed["reason"] == "card_declined"
    assert open_invoice["number"] in failed["detail"]
    assert alice.get(path).json()["status"] == "open"
    # Saved through the API the card would collect at once (SUB-12, test_pay_now.py);
    # saved as the provider's own page would, it waits for this pay.
    save_card_without_collecting(billing_api, "acme", "card_ok")
    paid = alice.post(f"{path}/pay")
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["paid_at"]
    assert paid.json()["lines"]
    card = the_subscription(alice)
    assert (card["state"], card["badge"], card["payment_pending"]) == (
        "active",
        "Active subscription",
        False,
    )
    problem(alice.post(f"{path}/pay"), 409, "invoice_not_open")


def save_card_without_collecting(api: ApiWorld, organization: str, card: str) -> None:
    """The default card changed with no collection (services.payments directly)."""
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import save_payment_method
    from tabkeeper.services.payments import customer_of

    world = api.world
    with world.billing() as b:
        customer = customer_of(organization_by_code(b, organization))
    saved = world.provider.attach(customer, card)
    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, organization), saved)


def test_a_paid_invoice_cannot_be_paid_again(alice: Client) -> None:
    (invoice,) = alice.get("/v1/invoices").json()["data"]
    problem(alice.post(f"/v1/invoices/{invoice['id']}/pay"), 409, "invoice_not_open")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "unpaid"}, "invalid_request"),
        ({"limit": 0}, "invalid_request"),
        ({"cursor": "nope"}, "invalid_cursor"),
    ],
)
def test_bad_list_parameters(alice: Client, params: dict[str, object], code: str) -> None:
    response = alice.get("/v1/invoices", **params)
    assert response.status_code in (400, 422)
    assert response.json()["code"] == code


def test_unknown_invoices_are_not_found(alice: Client) -> None:
    problem(alice.get("/v1/invoices/999"), 404, "not_found")
    problem(alice.post("/v1/invoices/999/pay"), 404, "not_found")
