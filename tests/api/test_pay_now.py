"""SUB-12 through the API: `POST /v1/organizations/{code}/pay_now` and a saved card
collect the open invoices at once, oldest first, stopping at the first failure; success
restores a past_due or suspended subscription at once (no waiting for the next retry).

Refusals tried, each with nothing changed (no payment attempt, no charge, no notice):
an unknown organization (404), another organization's (404), a member without the
billing role (403), a sub-account (409 sub_account), open invoices with no card on file
(409 payment_method_required). Nothing open is not a refusal: 200 with nothing paid.
Run on SQLite and PostgreSQL (the `engine` fixture marks them `db`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import Notice, PaymentAttempt
from tests.api.billing import (
    GLOBEX,
    make_billing_world,
    make_organization,
    problem,
    subscribe,
    the_subscription,
)
from tests.api.conftest import ApiWorld, Client
from tests.api.test_invoices import save_card_without_collecting
from tests.integration.conftest import FEB_1

MAR_1 = FEB_1 + timedelta(days=28)


@pytest.fixture
def past_due(engine: Engine) -> ApiWorld:
    """acme (Basic, 30.00 a month from Jan 1), grace 40 days: the Feb 1 and Mar 1
    renewals declined (card_fails_later), both open, still past_due."""
    api = make_billing_world(engine, {"grace_days": 40, "payment_retry_days": [1, 3, 5]})
    make_organization(api)
    alice = api.member("acme", "alice")
    subscribe(api, alice)
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_fails_later"})
    api.world.worker().run_until(MAR_1 + timedelta(hours=1))
    return api


def alice_of(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


def open_numbers(client: Client) -> list[str]:
    return [i["number"] for i in client.get("/v1/invoices", status="open").json()["data"]]


def unchanged(api: ApiWorld) -> tuple[int, int, int]:
    world = api.world
    return world.count(PaymentAttempt), world.charges(), world.count(Notice)


def test_sub12_pay_now_collects_oldest_first_and_restores(past_due: ApiWorld) -> None:
    """SUB-12: with a good card on file (changed on the provider's own page, so nothing
    collected it yet), pay_now pays both open invoices, oldest first, and the subscription
    is active at once ("Active subscription", no "Payment pending")."""
    alice = alice_of(past_due)
    assert open_numbers(alice) == ["INV-000002", "INV-000003"]
    assert the_subscription(alice)["state"] == "past_due"
    save_card_without_collecting(past_due, "acme", "card_ok")
    answer = alice.post("/v1/organizations/acme/pay_now")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [i["number"] for i in body["paid"]] == ["INV-000002", "INV-000003"]
    assert all(i["status"] == "paid" and i["paid_at"] for i in body["paid"])
    assert (body["open"], body["subscription_state"], body["organization"]) == (
        [],
        "active",
        "acme",
    )
    card = the_subscription(alice)
    assert (card["state"], card["badge"], card["payment_pending"]) == (
        "active",
        "Active subscription",
        False,
    )
    paid_at = [i["paid_at"] for i in body["paid"]]
    assert paid_at[0] <= paid_at[1]


def test_sub12_a_decline_stops_at_the_oldest(past_due: ApiWorld) -> None:
    """SUB-12: with the failing card, pay_now tries the oldest invoice only: a 409
    payment_failed naming it, with the provider's reason and nothing paid before it; the
    newer invoice is not charged."""
    alice = alice_of(past_due)
    attempts = past_due.world.count(PaymentAttempt)
    failed = problem(alice.post("/v1/organizations/acme/pay_now"), 409, "payment_failed")
    assert (failed["reason"], failed["invoice"], failed["paid"]) == (
        "card_declined",
        "INV-000002",
        [],
    )
    assert "INV-000002" in failed["detail"]
    assert past_due.world.count(PaymentAttempt) == attempts + 1
    assert open_numbers(alice) == ["INV-000002", "INV-000003"]
    assert the_subscription(alice)["state"] == "past_due"


def test_sub12_saving_a_good_card_collects_at_once(past_due: ApiWorld) -> None:
    """SUB-12: POST /v1/payment_methods with a good card pays the open invoices at once,
    oldest first, and restores the subscription; the answer is the card."""
    alice = alice_of(past_due)
    saved = alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["brand"] == "visa"
    assert open_numbers(alice) == []
    assert the_subscription(alice)["state"] == "active"


def test_sub12_a_card_saved_after_grace_restores_a_suspended_subscription(
    engine: Engine,
) -> None:
    """SUB-12, SUB-9: after the last retry and the end of grace the subscription is
    suspended (no retry is left); saving a good card collects at once and it is active."""
    api = make_billing_world(engine)
    make_organization(api)
    alice = alice_of(api)
    subscribe(api, alice)
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_fails_later"})
    api.world.worker().run_until(FEB_1 + timedelta(days=10))
    alice = alice_of(api)
    assert the_subscription(alice)["state"] == "suspended"
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    card = the_subscription(alice)
    assert (card["state"], card["badge"]) == ("active", "Active subscription")
    assert open_numbers(alice) == []


def test_sub12_nothing_open_is_not_an_error(engine: Engine) -> None:
    """SUB-12: nothing owed answers 200 with nothing paid and nothing open; no charge."""
    api = make_billing_world(engine)
    make_organization(api)
    alice = alice_of(api)
    subscribe(api, alice)
    before = unchanged(api)
    answer = alice.post("/v1/organizations/acme/pay_now")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "organization": "acme",
        "paid": [],
        "open": [],
        "subscription_state": "active",
    }
    assert unchanged(api) == before
    # The platform's key too; an organization on its free trial has nothing to pay.
    make_organization(api, GLOBEX)
    trial = api.platform.post("/v1/organizations/globex/pay_now")
    assert trial.status_code == 200 and trial.json()["paid"] == []


def refusals(api: ApiWorld) -> list[tuple[Client, str, int, str]]:
    make_organization(api, GLOBEX)
    made = api.platform.post("/v1/organizations", {"code": "acme-eu", "parent": "acme"})
    assert made.status_code == 201, made.text
    alice, carol, gina = (api.member(*who) for who in (("acme", "alice"), ("acme", "carol"),
                                                       ("globex", "gina")))  # fmt: skip
    return [
        (alice, "nobody", 404, "not_found"),
        (alice, "globex", 404, "not_found"),
        (gina, "acme", 404, "not_found"),
        (carol, "acme", 403, "forbidden"),
        (alice, "acme-eu", 409, "sub_account"),
        (api.platform, "acme-eu", 409, "sub_account"),
    ]


def test_sub12_pay_now_refusals_change_nothing(past_due: ApiWorld) -> None:
    """SUB-12, ACL-1, ACL-3, SUB-2: each refusal is a clear problem and writes nothing."""
    for client, code, status, problem_code in refusals(past_due):
        before = unchanged(past_due)
        problem(client.post(f"/v1/organizations/{code}/pay_now"), status, problem_code)
        assert unchanged(past_due) == before, (code, problem_code)
    assert open_numbers(alice_of(past_due)) == ["INV-000002", "INV-000003"]


def test_sub12_no_card_on_file_is_refused_before_any_attempt(past_due: ApiWorld) -> None:
    """SUB-12: open invoices and no card: 409 payment_method_required, nothing written."""
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import clear_payment_methods

    with past_due.world.billing() as b:
        clear_payment_methods(b, organization_by_code(b, "acme"))
    before = unchanged(past_due)
    bob = past_due.member("acme", "bob")  # a billing admin may pay
    body: dict[str, Any] = problem(
        bob.post("/v1/organizations/acme/pay_now"), 409, "payment_method_required"
    )
    assert "payment method" in body["detail"]
    assert unchanged(past_due) == before


def test_sub12_paying_one_invoice_without_a_card_writes_nothing(past_due: ApiWorld) -> None:
    """SUB-12: `POST /v1/invoices/{id}/pay` (the tab's row "Pay now") with no card on file
    is a 409 payment_method_required, with no attempt, charge or notice written."""
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import clear_payment_methods

    with past_due.world.billing() as b:
        clear_payment_methods(b, organization_by_code(b, "acme"))
    alice = alice_of(past_due)
    (oldest, _) = alice.get("/v1/invoices", status="open").json()["data"]
    before = unchanged(past_due)
    problem(alice.post(f"/v1/invoices/{oldest['id']}/pay"), 409, "payment_method_required")
    assert unchanged(past_due) == before
