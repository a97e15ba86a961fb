"""Corrections through the API (INV-5, and INV-2's states): the platform voids an open
invoice, marks one uncollectible or paid out of band, issues credit notes (refunded through
the provider or credited to the account) with their own gapless numbers, and grants
goodwill account credit. Every refusal is a clear 4xx problem with nothing changed; these
tests use the `engine` fixture, so they run on SQLite and again on PostgreSQL (`-m db`).

Bad inputs tried: a member (even the owner) on every platform-only action (403); void,
mark_uncollectible and mark_paid of a paid, void or uncollectible invoice (409
invoice_not_open); void of an invoice whose payment is under way (409
invoice_payment_collected); unknown invoices and another platform's invoice (404); a
credit note above what is left of the invoice (409 credit_note_exceeds_invoice, naming
what is left) or of a line (409 credit_note_exceeds_line); a refund on an open invoice
(409 refund_not_possible); a credit note on a void invoice (409 invoice_not_creditable);
amount and lines together, neither, an unknown line, a line given twice (400); zero,
negative, too large and non-integer amounts (422); a grant to an unknown organization
(404).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Organization, PaymentAttempt
from tabkeeper.db.tables_corrections import CreditNote
from tabkeeper.services.access import create_api_key
from tabkeeper.services.catalog import ensure_platform
from tabkeeper.services.payments import claim_attempt
from tests.api.billing import make_organization, problem, subscribe, the_subscription
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import FEB_1


@pytest.fixture
def alice(billing_api: ApiWorld) -> Client:
    """acme's owner; acme subscribed to Basic (30.00 a month) on Jan 1 with card_ok:
    INV-000001 3000, paid."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    return alice


def invoices(client: Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/invoices", organization="acme").json()["data"]
    return found


def past_due(api: ApiWorld, alice: Client) -> tuple[Client, dict[str, Any]]:
    """The card fails from now; the Feb 1 renewal (INV-000002, 3000) is declined: open,
    and acme past_due. A fresh session of alice and the open invoice."""
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_fails_later"})
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    alice = api.member("acme", "alice")
    assert the_subscription(alice)["state"] == "past_due"
    (open_invoice,) = alice.get("/v1/invoices", status="open").json()["data"]
    return alice, open_invoice


def account_credit(api: ApiWorld) -> int:
    with transaction(api.world.engine) as session:
        organization = session.scalars(select(Organization).where(Organization.code == "acme"))
        return organization.one().account_credit_minor


def credit_note_count(api: ApiWorld) -> int:
    return api.world.count(CreditNote)


def state(api: ApiWorld) -> tuple[object, ...]:
    """What a refusal must leave as it was: every invoice, credit notes, account credit."""
    with transaction(api.world.engine) as session:
        rows = session.scalars(select(Invoice).order_by(Invoice.id)).all()
        shown = tuple((i.number, i.status, i.amount_due_minor, i.paid_at) for i in rows)
    return shown, credit_note_count(api), account_credit(api), api.world.charges()


def test_inv5_void_an_open_invoice_then_nothing_collects_it(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: the platform voids an open invoice of which nothing was collected: status
    void, `invoice.voided`, nothing owed, so the past_due subscription is active again; the
    retries that were queued collect nothing."""
    alice, open_invoice = past_due(billing_api, alice)
    charges = billing_api.world.charges()
    voided = billing_api.platform.post(f"/v1/invoices/{open_invoice['id']}/void")
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void" and voided.json()["lines"]
    assert the_subscription(alice)["state"] == "active"
    assert billing_api.world.notices("invoice.voided") == 1
    billing_api.world.worker().run_until(FEB_1 + timedelta(days=7))
    assert billing_api.world.charges() == charges
    assert alice.get(f"/v1/invoices/{open_invoice['id']}").json()["status"] == "void"
    assert the_subscription(alice)["state"] == "active"


def test_inv5_mark_uncollectible_keeps_the_subscription_state(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: an open invoice written off is uncollectible; the subscription stays
    past_due; a written-off invoice is never collected."""
    alice, open_invoice = past_due(billing_api, alice)
    path = f"/v1/invoices/{open_invoice['id']}"
    response = billing_api.platform.post(f"{path}/mark_uncollectible")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "uncollectible"
    assert the_subscription(alice)["state"] == "past_due"
    alice.post("/v1/payment_methods", {"organization": "acme", "card": "card_ok"})
    problem(alice.post(f"{path}/pay"), 409, "invoice_not_open")


def test_inv5_mark_paid_out_of_band_restores_like_a_payment(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5, SUB-8: an open invoice collected outside the provider is marked paid
    (`invoice.paid`, no charge) and the past_due subscription is active again, exactly as
    after the payment of its last open invoice (`subscription.renewed`)."""
    alice, open_invoice = past_due(billing_api, alice)
    charges, renewed = (
        billing_api.world.charges(),
        billing_api.world.notices("subscription.renewed"),
    )
    response = billing_api.platform.post(f"/v1/invoices/{open_invoice['id']}/mark_paid")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paid" and response.json()["paid_at"]
    assert response.json()["paid_via"] == "out_of_band"
    card = the_subscription(alice)
    assert (card["state"], card["payment_pending"]) == ("active", False)
    assert billing_api.world.charges() == charges
    assert billing_api.world.notices("subscription.renewed") == renewed + 1


def test_inv5_credit_note_on_a_line_refunded_through_the_provider(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: a credit note for part of a line of a paid invoice, refunded: numbered
    CN-000001, its total the sum of its lines, refund_minor 1000 recorded by the provider
    (the sandbox keeps the refund of the charge); the invoice stays paid and unchanged; a
    second credit note is CN-000002."""
    (invoice,) = invoices(alice)
    body = {"lines": [{"line": 0, "amount_minor": 1000}], "refund": True, "reason": "Outage"}
    response = billing_api.platform.post(f"/v1/invoices/{invoice['id']}/credit_notes", body)
    assert response.status_code == 201, response.text
    note = response.json()
    assert (note["number"], note["invoice"], note["total_minor"]) == (
        "CN-000001",
        "INV-000001",
        1000,
    )
    assert (note["refund_minor"], note["credited_minor"], note["applied_minor"]) == (1000, 0, 0)
    assert note["refund_status"] == "succeeded"
    assert sum(line["amount_minor"] for line in note["lines"]) == note["total_minor"]
    assert note["lines"][0]["line"] == 0
    with transaction(billing_api.world.engine) as session:
        reference = session.scalars(
            select(PaymentAttempt.provider_reference).where(
                PaymentAttempt.invoice_id == invoice["id"]
            )
        ).one()
    assert reference is not None
    (refund,) = billing_api.world.provider.refunds(reference)
    assert refund.succeeded and refund.amount.minor == 1000
    after = alice.get(f"/v1/invoices/{invoice['id']}").json()
    assert {**after, "lines": None} == invoice
    second = billing_api.platform.post(
        f"/v1/invoices/{invoice['id']}/credit_notes", {"amount_minor": 500}
    )
    assert second.json()["number"] == "CN-000002"
    assert second.json()["credited_minor"] == 500 and account_credit(billing_api) == 500
    listed = alice.get("/v1/credit_notes", organization="acme").json()["data"]
    assert [n["number"] for n in listed] == ["CN-000001", "CN-000002"]
    assert alice.get(f"/v1/credit_notes/{note['id']}").json() == note
    problem(billing_api.member("acme", "carol").get("/v1/credit_notes"), 403, "forbidden")


def test_inv5_credit_note_on_an_open_invoice_lowers_its_amount_due(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: on an open invoice a credit note lowers the amount due (its total and lines
    never change, INV-2); down to 0 the invoice is paid and the subscription restored."""
    alice, open_invoice = past_due(billing_api, alice)
    path = f"/v1/invoices/{open_invoice['id']}"
    first = billing_api.platform.post(f"{path}/credit_notes", {"amount_minor": 1000}).json()
    assert (first["applied_minor"], first["credited_minor"]) == (1000, 0)
    shown = alice.get(path).json()
    assert (shown["status"], shown["total_minor"], shown["amount_due_minor"]) == (
        "open",
        3000,
        2000,
    )
    billing_api.platform.post(f"{path}/credit_notes", {"amount_minor": 2000})
    shown = alice.get(path).json()
    assert (shown["status"], shown["total_minor"], shown["amount_due_minor"]) == ("paid", 3000, 0)
    assert the_subscription(alice)["state"] == "active"


def test_inv5_goodwill_credit_is_used_by_the_next_invoice(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5, SUB-5: goodwill account credit (platform key) is applied to the next
    invoice: the Feb 1 renewal of 3000 shows credit applied 700, amount due 2300."""
    response = billing_api.platform.post(
        "/v1/organizations/acme/account_credit", {"amount_minor": 700, "reason": "Sorry"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"organization": "acme", "credit_minor": 700}
    billing_api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    renewal = invoices(billing_api.platform)[-1]
    assert (renewal["credit_applied_minor"], renewal["amount_due_minor"]) == (700, 2300)
    assert account_credit(billing_api) == 0


def test_inv5_an_idempotency_key_issues_one_credit_note(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5 with api/idempotency.py: the same POST with the same key twice is one
    credit note, one refund."""
    (invoice,) = invoices(alice)
    path = f"/v1/invoices/{invoice['id']}/credit_notes"
    body = {"amount_minor": 300, "refund": True}
    headers = {"Idempotency-Key": "cn-1"}
    first = billing_api.platform.post(path, body, headers=headers)
    again = billing_api.platform.post(path, body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert credit_note_count(billing_api) == 1


def test_inv5_refusals_change_nothing(billing_api: ApiWorld, alice: Client) -> None:
    """INV-5, ACL-1: each refusal is a clear problem, and nothing changes."""
    alice, open_invoice = past_due(billing_api, alice)
    paid = invoices(alice)[0]
    platform = billing_api.platform
    before = state(billing_api)
    # members, even the owner, may not correct invoices
    for action in ("void", "mark_uncollectible", "mark_paid"):
        problem(alice.post(f"/v1/invoices/{open_invoice['id']}/{action}"), 403, "forbidden")
    problem(
        alice.post(f"/v1/invoices/{paid['id']}/credit_notes", {"amount_minor": 1}),
        403,
        "forbidden",
    )
    problem(
        alice.post("/v1/organizations/acme/account_credit", {"amount_minor": 1}), 403, "forbidden"
    )
    # a paid invoice is corrected only by a credit note
    for action in ("void", "mark_uncollectible", "mark_paid"):
        problem(platform.post(f"/v1/invoices/{paid['id']}/{action}"), 409, "invoice_not_open")
    # unknown invoices
    for action in ("void", "mark_uncollectible", "mark_paid", "credit_notes"):
        body = {"amount_minor": 1} if action == "credit_notes" else None
        problem(platform.post(f"/v1/invoices/999999/{action}", body), 404, "not_found")
    problem(platform.get("/v1/credit_notes/999999"), 404, "not_found")
    problem(
        platform.post("/v1/organizations/nobody/account_credit", {"amount_minor": 1}),
        404,
        "not_found",
    )
    # credit notes above what is left
    over = problem(
        platform.post(f"/v1/invoices/{paid['id']}/credit_notes", {"amount_minor": 3001}),
        409,
        "credit_note_exceeds_invoice",
    )
    assert "3000" in over["detail"]
    problem(
        platform.post(
            f"/v1/invoices/{paid['id']}/credit_notes",
            {"lines": [{"line": 0, "amount_minor": 3001}]},
        ),
        409,
        "credit_note_exceeds_line",
    )
    problem(
        platform.post(
            f"/v1/invoices/{open_invoice['id']}/credit_notes", {"amount_minor": 1, "refund": True}
        ),
        409,
        "refund_not_possible",
    )
    # malformed credit notes
    for body in (
        {"amount_minor": 1, "lines": [{"line": 0, "amount_minor": 1}]},
        {"refund": True},
        {"lines": [{"line": 5, "amount_minor": 1}]},
        {"lines": [{"line": 0, "amount_minor": 1}, {"line": 0, "amount_minor": 1}]},
    ):
        response = platform.post(f"/v1/invoices/{paid['id']}/credit_notes", body)
        assert response.status_code == 400, (body, response.text)
    for amount in (0, -5, 2**31, "10", 1.5):
        response = platform.post(
            f"/v1/invoices/{paid['id']}/credit_notes", {"amount_minor": amount}
        )
        assert response.status_code == 422, (amount, response.text)
        response = platform.post("/v1/organizations/acme/account_credit", {"amount_minor": amount})
        assert response.status_code == 422, (amount, response.text)
    assert state(billing_api) == before
    # a void invoice can be neither voided, marked, paid nor credited again
    assert platform.post(f"/v1/invoices/{open_invoice['id']}/void").status_code == 200
    before = state(billing_api)
    for action in ("void", "mark_uncollectible", "mark_paid"):
        problem(
            platform.post(f"/v1/invoices/{open_invoice['id']}/{action}"), 409, "invoice_not_open"
        )
    problem(
        platform.post(f"/v1/invoices/{open_invoice['id']}/credit_notes", {"amount_minor": 1}),
        409,
        "invoice_not_creditable",
    )
    assert state(billing_api) == before


def test_inv5_void_refused_while_a_payment_is_under_way(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: an invoice whose payment attempt is claimed (the provider may be charging
    it now) cannot be voided: 409 invoice_payment_collected, nothing changed."""
    alice, open_invoice = past_due(billing_api, alice)
    with billing_api.world.billing() as b:
        assert claim_attempt(b, open_invoice["id"], None) is not None
    before = state(billing_api)
    problem(
        billing_api.platform.post(f"/v1/invoices/{open_invoice['id']}/void"),
        409,
        "invoice_payment_collected",
    )
    problem(
        billing_api.platform.post(f"/v1/invoices/{open_invoice['id']}/mark_paid"),
        409,
        "payment_in_progress",
    )
    assert state(billing_api) == before


def test_inv5_another_platforms_invoice_is_not_found(billing_api: ApiWorld, alice: Client) -> None:
    """ACL-3, INV-5: another platform's key gets 404 for acme's invoices and credit notes,
    never a hint that they exist, and nothing changes."""
    (invoice,) = invoices(alice)
    note = billing_api.platform.post(
        f"/v1/invoices/{invoice['id']}/credit_notes", {"amount_minor": 100}
    ).json()
    world = billing_api.world
    with transaction(world.engine) as session:
        other = ensure_platform(session, "other-platform", "Other", world.clock.now(), {})
        _, key = create_api_key(session, other.id, "tests", world.clock.now())
    intruder = billing_api.platform.as_(key)
    before = state(billing_api)
    for action in ("void", "mark_uncollectible", "mark_paid"):
        problem(intruder.post(f"/v1/invoices/{invoice['id']}/{action}"), 404, "not_found")
    problem(
        intruder.post(f"/v1/invoices/{invoice['id']}/credit_notes", {"amount_minor": 1}),
        404,
        "not_found",
    )
    problem(intruder.get(f"/v1/credit_notes/{note['id']}"), 404, "not_found")
    problem(intruder.get(f"/v1/credit_notes/{note['id']}.pdf"), 404, "not_found")
    problem(intruder.post(f"/v1/credit_notes/{note['id']}/finish_refund"), 404, "not_found")
    problem(
        intruder.post("/v1/organizations/acme/account_credit", {"amount_minor": 1}),
        404,
        "not_found",
    )
    assert intruder.get("/v1/credit_notes").json()["data"] == []
    assert state(billing_api) == before


def test_inv5_credit_note_pdf_downloads(billing_api: ApiWorld, alice: Client) -> None:
    """INV-5: `GET /v1/credit_notes/{id}.pdf` is the credit note as a PDF named after its
    number, for the platform and the organization's owner."""
    (invoice,) = invoices(alice)
    note = billing_api.platform.post(
        f"/v1/invoices/{invoice['id']}/credit_notes", {"amount_minor": 250}
    ).json()
    response = alice.get(note["pdf_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="CN-000001.pdf"' in response.headers["content-disposition"]
    assert response.content.startswith(b"%PDF-")


def test_inv5_void_gives_back_the_account_credit_it_used(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5, SUB-5: the Feb 1 renewal used 700 of account credit (amount due 2300,
    declined); voiding it gives the 700 back. An open invoice with a credit note cannot be
    voided (409 invoice_has_credit_notes, nothing changed)."""
    billing_api.platform.post("/v1/organizations/acme/account_credit", {"amount_minor": 700})
    alice, open_invoice = past_due(billing_api, alice)
    assert (open_invoice["credit_applied_minor"], open_invoice["amount_due_minor"]) == (700, 2300)
    assert account_credit(billing_api) == 0
    voided = billing_api.platform.post(f"/v1/invoices/{open_invoice['id']}/void")
    assert voided.status_code == 200, voided.text
    assert account_credit(billing_api) == 700


def test_inv5_an_invoice_with_a_credit_note_is_not_voided(
    billing_api: ApiWorld, alice: Client
) -> None:
    """INV-5: once credited, an open invoice is corrected by credit notes only."""
    alice, open_invoice = past_due(billing_api, alice)
    path = f"/v1/invoices/{open_invoice['id']}"
    assert (
        billing_api.platform.post(f"{path}/credit_notes", {"amount_minor": 100}).status_code == 201
    )
    before = state(billing_api)
    problem(billing_api.platform.post(f"{path}/void"), 409, "invoice_has_credit_notes")
    assert state(billing_api) == before
