"""INV-5 as a property: for random sequences of credit notes (amounts or lines, refunded
or not) against one invoice (paid by a card charge, or open), on SQLite and PostgreSQL:
- what the credit notes credit in all never exceeds the invoice total, nor on any line
  what the line was;
- each credit note's total is the sum of its lines, and refund + account credit + what
  was taken off the amount due;
- credit note numbers are gapless per platform (CN-000001 ... in order, none lost to a
  refusal);
- the invoice's lines and total never change (INV-2); its amount due falls by what was
  applied; the account credit grows by what was credited; refunds never exceed the charge;
- a refused credit note changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, InvoiceLine, Organization
from tabkeeper.db.tables_corrections import CreditNote, CreditNoteLine
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.invoicing import LineDraft, LineKind
from tabkeeper.services.credit_notes import credit_invoice
from tabkeeper.services.invoices import issue_invoice
from tabkeeper.services.organizations import create_organization, organization_by_code
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import collect, customer_of
from tests.integration.conftest import JAN_1, World, make_world

LINE_AMOUNTS = st.lists(st.integers(min_value=-2000, max_value=5000), min_size=1, max_size=4)
AMOUNT = st.integers(min_value=1, max_value=6000)
REQUESTS = st.lists(
    st.one_of(
        st.builds(
            lambda amount, refund: CreditRequest(amount_minor=amount, refund=refund),
            AMOUNT,
            st.booleans(),
        ),
        st.builds(
            lambda lines, refund: CreditRequest(lines=tuple(lines), refund=refund),
            st.lists(st.tuples(st.integers(0, 4), AMOUNT), min_size=1, max_size=3),
            st.booleans(),
        ),
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture
def credit_world(engine: Engine) -> tuple[World, Any]:
    return make_world(engine), count(1)


def invoice_for(world: World, code: str, amounts: list[int], paid: bool) -> int:
    """An invoice of `code` with lines of `amounts`; paid by a card charge, or open."""
    end = JAN_1 + timedelta(days=31)
    with world.billing() as b:
        organization = create_organization(b, code, {"owner": "owner"})
        customer = customer_of(organization)
    card = world.provider.attach(customer, "card_ok")
    with world.billing() as b:
        organization = organization_by_code(b, code)
        save_payment_method(b, organization, card)
        drafts = [
            LineDraft(LineKind.ADDON, f"Item {n}", Decimal(1), None, amount, JAN_1, end, {})
            for n, amount in enumerate(amounts)
        ]
        invoice = issue_invoice(b, organization, f"test:{code}", drafts)
        invoice_id = invoice.id
    if paid:
        collect(world.billing, world.provider, invoice_id)
    return invoice_id


def snapshot(world: World, invoice_id: int, code: str) -> dict[str, Any]:
    with transaction(world.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        notes = session.scalars(
            select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)
        ).all()
        lines = session.scalars(
            select(CreditNoteLine)
            .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
            .where(CreditNote.invoice_id == invoice_id)
        ).all()
        organization = session.scalars(select(Organization).where(Organization.code == code))
        return {
            "invoice": (invoice.status, invoice.total_minor, invoice.amount_due_minor),
            "invoice_lines": [
                line.amount_minor
                for line in session.scalars(
                    select(InvoiceLine)
                    .where(InvoiceLine.invoice_id == invoice_id)
                    .order_by(InvoiceLine.position)
                )
            ],
            "notes": [
                (n.number, n.total_minor, n.refund_minor, n.credited_minor, n.applied_minor)
                for n in notes
            ],
            "note_lines": {
                n.id: [line.amount_minor for line in lines if line.credit_note_id == n.id]
                for n in notes
            },
            "by_line": [(line.invoice_line, line.amount_minor) for line in lines],
            "credit": organization.one().account_credit_minor,
            "all_numbers": session.scalars(
                select(CreditNote.number)
                .where(CreditNote.platform_id == world.platform_id)
                .order_by(CreditNote.id)
            ).all(),
        }


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(amounts=LINE_AMOUNTS, paid=st.booleans(), requests=REQUESTS)
def test_inv5_credit_notes_never_credit_more_than_the_invoice(
    credit_world: tuple[World, Any], amounts: list[int], paid: bool, requests: list[CreditRequest]
) -> None:
    """Property, INV-5 (and INV-2): see the module docstring."""
    world, serial = credit_world
    code = f"org{next(serial)}"
    invoice_id = invoice_for(world, code, amounts, paid and sum(amounts) > 0)
    start = snapshot(world, invoice_id, code)
    for request in requests:
        before = snapshot(world, invoice_id, code)
        try:
            credit_invoice(world.billing, world.provider, invoice_id, request)
        except (Refused, InvalidInput):
            assert snapshot(world, invoice_id, code) == before  # a refusal changes nothing
    end = snapshot(world, invoice_id, code)
    status, total, due = end["invoice"]
    assert (total, end["invoice_lines"]) == (start["invoice"][1], start["invoice_lines"])
    credited_in_all = sum(note[1] for note in end["notes"])
    assert credited_in_all <= max(0, total)
    for index, amount in enumerate(end["invoice_lines"]):
        on_line = sum(a for line, a in end["by_line"] if line == index)
        assert on_line <= max(0, amount)
    notes = {note[0]: note for note in end["notes"]}
    for line_amounts in end["note_lines"].values():
        assert line_amounts and all(amount > 0 for amount in line_amounts)
    for _number, note_total, refund, credited, applied in notes.values():
        assert note_total == refund + credited + applied
    assert [n[1] for n in end["notes"]] == [sum(lines) for lines in end["note_lines"].values()]
    assert end["all_numbers"] == [f"CN-{n:06d}" for n in range(1, len(end["all_numbers"]) + 1)]
    applied = sum(note[4] for note in end["notes"])
    assert due == start["invoice"][2] - applied >= 0
    assert end["credit"] == start["credit"] + sum(note[3] for note in end["notes"])
    refunded = sum(note[2] for note in end["notes"])
    assert refunded <= (start["invoice"][2] if start["invoice"][0] == "paid" else 0)
    if due == 0 and start["invoice"][0] == "open":
        assert status == "paid"
