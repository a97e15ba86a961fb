"""Invoice PDFs (INV-3) from invoices issued by the real services: the PDF's text, read
back with pypdf, shows every line and the totals of the invoice it came from, also for a
30-line invoice over several pages; access follows ACL-1/ACL-3; nothing is fetched.

Rendering takes a quarter of a second or more, so each test renders at most one PDF."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pypdf
import pytest
from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, InvoiceLine
from tabkeeper.domain.errors import Forbidden, InvalidInput, NotFound
from tabkeeper.domain.invoicing import LineDraft, LineKind
from tabkeeper.pdf import invoice_pdf, invoice_pdf_for
from tabkeeper.pdf.invoice import invoice_document, invoice_html, render_invoice_pdf
from tabkeeper.services.access import Caller
from tabkeeper.services.invoices import issue_invoice
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import FEB_1, JAN_1, World

PNG_DOT = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page, with runs of whitespace made one space."""
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def stored(world: World, number: str) -> tuple[Invoice, list[InvoiceLine]]:
    with transaction(world.engine) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == number)).one()
        lines = session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        ).all()
        session.expunge_all()
        return invoice, list(lines)


def dollars(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}${abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def test_inv3_renewal_pdf_shows_every_line_and_the_totals(world: World) -> None:
    """INV-3: the renewal invoice of Feb 1 (Basic 30.00 in advance, 20 minutes of
    January's overage at 0.10 in arrears) prints every line's description, quantity, unit
    amount and amount, and the totals, equal to the stored invoice; with the header fields
    (platform, number, dates, status, organization, period)."""
    world.organization("acme")
    world.subscribe("acme")
    world.clock.set(JAN_1 + timedelta(days=9))
    with world.billing() as b:
        calls = [
            {"id": f"call-{i}", "type": "call.ended", "org": "acme", "agent": "a1",
             "properties": {"duration_seconds": 60 * 30}}
            for i in range(4)
        ]  # fmt: skip
        assert ingest_batch(b, calls).accepted == 4
    world.worker().run_until(FEB_1)
    invoice, lines = stored(world, "INV-000002")
    assert sorted(line.amount_minor for line in lines) == [200, 3000]
    assert invoice.total_minor == 3200

    with transaction(world.engine) as session:
        data = invoice_pdf(session, world.platform_id, invoice.id)
    (text,) = pdf_pages(data)

    for line in lines:
        assert " ".join(line.description.split()) in text
        assert dollars(line.amount_minor) in text
    assert "Basic (Feb 1 – Mar 1)" in text
    assert "1 $30.00 $30.00" in text  # quantity, unit amount, amount of the plan line
    assert "20 $0.10 $2.00" in text  # the usage line: 20 minutes over, at 0.10
    assert "Subtotal $32.00" in text and "Total $32.00" in text
    assert "Amount due $32.00" in text
    for field in (
        "Acme",
        "Invoice INV-000002",
        "Issued Feb 1, 2026",
        "Billing period Feb 1, 2026 – Mar 1, 2026",
        "Status Paid",
        "Paid Feb 1, 2026",
        "BILLED TO acme",
        "Currency USD",
    ):
        assert field in text, field
    assert "Page 1 of 1" in text


def test_inv3_a_30_line_invoice_runs_over_pages_with_every_line_and_the_total(
    world: World,
) -> None:
    """INV-3: a 30-line invoice issued through issue_invoice, paid partly by account
    credit (SUB-5): all 30 lines, the total, the credit applied and the amount due appear
    across the pages; the table header repeats on every page; pages are numbered."""
    world.organization("acme")
    period_end = JAN_1 + timedelta(days=31)
    drafts = [
        LineDraft(LineKind.ADDON, f"Extra item {n:02d}", Decimal(n), Decimal("1.25"),
                  125 * n, JAN_1, period_end, {})
        for n in range(1, 31)
    ]  # fmt: skip
    with world.billing() as b:
        organization = organization_by_code(b, "acme")
        organization.account_credit_minor = 1000
        invoice_id = issue_invoice(
            b, organization, "test:thirty-lines", drafts, period_start=JAN_1, period_end=period_end
        ).id
    with transaction(world.engine) as session:
        row = session.get(Invoice, invoice_id)
        assert row is not None
        total, applied, due = row.total_minor, row.credit_applied_minor, row.amount_due_minor
        assert (total, applied, due) == (125 * 465, 1000, 125 * 465 - 1000)
        data = invoice_pdf(session, world.platform_id, invoice_id)

    pages = pdf_pages(data)
    assert len(pages) >= 2
    text = " ".join(pages)
    for n in range(1, 31):
        assert f"Extra item {n:02d}" in text
        assert f"{n} $1.25 {dollars(125 * n)}" in text
    assert text.count("Extra item") == 30
    assert dollars(total) == "$581.25"
    assert f"Subtotal {dollars(total)}" in text
    assert f"Total {dollars(total)}" in text
    assert f"Account credit applied {dollars(-applied)}" in text
    assert f"Amount due {dollars(due)}" in text
    for number, page in enumerate(pages, start=1):
        assert "DESCRIPTION QUANTITY UNIT AMOUNT AMOUNT" in page
        assert f"Page {number} of {len(pages)}" in page
        assert "Invoice INV-000001" in page


def test_inv3_unknown_or_another_platforms_invoice_is_not_found(world: World) -> None:
    """INV-3, ACL-3: an invoice of another platform answers exactly like one that does
    not exist."""
    world.organization("acme")
    world.subscribe("acme")
    invoice, _ = stored(world, "INV-000001")
    with transaction(world.engine) as session:
        for platform_id, invoice_id in (
            (world.platform_id + 1, invoice.id),
            (world.platform_id, 999),
        ):
            with pytest.raises(NotFound, match="No such invoice"):
                invoice_pdf(session, platform_id, invoice_id)


def test_inv3_pdf_for_a_caller_follows_the_billing_rights(world: World) -> None:
    """INV-3, ACL-1, ACL-3: a member without billing rights is forbidden; a member of
    another organization sees no such invoice; the owner downloads it."""
    world.organization("acme", {"alice": "owner", "carol": "member"})
    world.organization("globex", {"gina": "owner"})
    world.subscribe("acme")
    invoice, _ = stored(world, "INV-000001")
    with world.billing() as b:
        globex = organization_by_code(b, "globex").id
    acme = invoice.organization_id
    with transaction(world.engine) as session:
        with pytest.raises(Forbidden):
            invoice_pdf_for(session, Caller(world.platform_id, acme, "carol", "member"), invoice.id)
        gina = Caller(world.platform_id, globex, "gina", "owner")
        with pytest.raises(NotFound):
            invoice_pdf_for(session, gina, invoice.id)
        with pytest.raises(NotFound):
            invoice_pdf_for(session, Caller(world.platform_id), 999)
        data = invoice_pdf_for(
            session, Caller(world.platform_id, acme, "alice", "owner"), invoice.id
        )
    (text,) = pdf_pages(data)
    assert "Invoice INV-000001" in text and "Total $30.00" in text


def test_inv3_logo_is_a_data_url_else_the_name_is_the_wordmark(world: World) -> None:
    """INV-3: the platform's name is the wordmark; a logo is shown only as an image
    `data:` URL, anything else is refused."""
    world.organization("acme")
    world.subscribe("acme")
    invoice, _ = stored(world, "INV-000001")
    with transaction(world.engine) as session:
        plain = invoice_document(session, world.platform_id, invoice.id)
        with_logo = invoice_document(session, world.platform_id, invoice.id, logo=PNG_DOT)
        with pytest.raises(InvalidInput, match="logo"):
            invoice_document(session, world.platform_id, invoice.id, logo="https://x.test/a.png")
    assert '<div class="wordmark">Acme</div>' in invoice_html(plain)
    assert plain.filename == "INV-000001.pdf"
    html = invoice_html(with_logo)
    assert f'src="{PNG_DOT}"' in html and 'class="wordmark"' not in html


def test_inv3_a_negative_total_says_it_goes_to_account_credit(world: World) -> None:
    """INV-3, SUB-5: an invoice whose total is negative (an immediate downgrade's
    credit) shows the amount due as zero and says the rest is account credit."""
    world.organization("acme")
    drafts = [
        LineDraft(LineKind.PRORATION, "Unused Pro", Decimal(1), None, -2000, None, None, {}),
        LineDraft(LineKind.PRORATION, "Remaining Basic", Decimal(1), None, 500, None, None, {}),
    ]  # fmt: skip
    with world.billing() as b:
        invoice = issue_invoice(b, organization_by_code(b, "acme"), "test:negative", drafts)
        invoice_id = invoice.id
    with transaction(world.engine) as session:
        document = invoice_document(session, world.platform_id, invoice_id)
    assert (document.total, document.amount_due, document.credited_to_account) == (
        "-$15.00",
        "$0.00",
        "$15.00",
    )
    assert document.period is None and document.lines[0].unit_amount is None
    html = invoice_html(document)
    assert "$15.00 goes to\nyour account credit" in html


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_inv3_rendering_fetches_nothing_from_the_network(world: World, local_server: str) -> None:
    """INV-3: WeasyPrint's URL fetcher refuses http(s): a document that names a URL (as
    a hostile name or logo might) renders without any request being made."""
    world.organization("acme")
    world.subscribe("acme")
    invoice, _ = stored(world, "INV-000001")
    with transaction(world.engine) as session:
        document = invoice_document(session, world.platform_id, invoice.id)
    hostile = type(document)(**{
        **{name: getattr(document, name) for name in document.__slots__},
        "logo": f"{local_server}/logo.png",
    })  # fmt: skip
    _Recorder.hits.clear()
    data = render_invoice_pdf(hostile)
    assert data.startswith(b"%PDF-")
    assert _Recorder.hits == []


def test_inv3_dates_are_utc_calendar_days() -> None:
    """INV-3: dates print as UTC calendar days, whatever the offset they were given in."""
    from tabkeeper.pdf.formatting import format_day, format_period

    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert format_day(late) == "Jan 31, 2026"
    assert format_period(late, late + timedelta(hours=1)) == "Jan 31, 2026 – Feb 1, 2026"
    assert format_period(None, late) is None
