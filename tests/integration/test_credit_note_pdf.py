"""Credit note PDFs (INV-5): the PDF of a credit note, read back with pypdf, shows its
lines, its total and where the money went, and names the invoice it corrects; access
follows ACL-1/ACL-3 as for invoices. Each test renders at most one PDF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice
from tabkeeper.db.tables_corrections import CreditNote, CreditNoteLine
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.domain.errors import Forbidden, NotFound
from tabkeeper.pdf.credit_note import caller_credit_note, render_credit_note_pdf
from tabkeeper.services.access import Caller
from tabkeeper.services.credit_notes import credit_invoice
from tests.integration.conftest import World
from tests.integration.test_invoice_pdf import dollars, pdf_pages


def credited(world: World, request: CreditRequest) -> int:
    """acme subscribed to Basic 30.00 with card_ok (INV-000001, paid); a credit note."""
    world.organization("acme", {"alice": "owner", "carol": "member"})
    world.subscribe("acme")
    with transaction(world.engine) as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
    return credit_invoice(world.billing, world.provider, invoice_id, request)


def test_inv5_credit_note_pdf_reads_back_its_lines_and_total(world: World) -> None:
    """INV-5: a credit note of 12.50 on line 0 of INV-000001, refunded: its PDF, read with
    pypdf, shows the title "Credit note CN-000001", the invoice it corrects, every line's
    description and amount, the total and the refund, equal to the stored credit note."""
    note_id = credited(world, CreditRequest(lines=((0, 1250),), refund=True))
    with transaction(world.engine) as session:
        note = session.get(CreditNote, note_id)
        assert note is not None
        lines = session.scalars(
            select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note_id)
        ).all()
        document = caller_credit_note(session, Caller(world.platform_id), note_id)
        total, refund = note.total_minor, note.refund_minor
        descriptions = [(" ".join(line.description.split()), line.amount_minor) for line in lines]
    (text,) = pdf_pages(render_credit_note_pdf(document))
    assert document.filename == "CN-000001.pdf"
    assert "Credit note CN-000001" in text
    assert "FOR INVOICE INV-000001" in text and "Invoice INV-000001" in text
    for description, amount in descriptions:
        assert description in text and dollars(amount) in text
    assert sum(amount for _, amount in descriptions) == total == refund == 1250
    assert f"Total credited {dollars(total)}" in text
    assert f"Refunded to the payment method {dollars(refund)}" in text
    assert "Line 1" in text and "Page 1 of 1" in text


def test_inv5_credit_note_pdf_access(world: World) -> None:
    """ACL-1, ACL-3: a member without billing rights is Forbidden; another platform's
    caller, or an unknown credit note, is NotFound."""
    note_id = credited(world, CreditRequest(amount_minor=100))
    with world.billing() as b:
        from tabkeeper.services.organizations import organization_by_code

        acme = organization_by_code(b, "acme").id
    with transaction(world.engine) as session:
        with pytest.raises(Forbidden):
            caller_credit_note(session, Caller(world.platform_id, acme, "carol", "member"), note_id)
        with pytest.raises(NotFound):
            caller_credit_note(session, Caller(world.platform_id + 1), note_id)
        with pytest.raises(NotFound):
            caller_credit_note(session, Caller(world.platform_id), note_id + 1)
