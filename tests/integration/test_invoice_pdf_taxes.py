"""INV-3, INV-6, INV-7: the PDF of a taxed, discounted invoice, read back with pypdf,
shows the billing details (legal name, address, country, tax ID), the discount line, the
tax of each rate and the total, equal to the stored invoice. The invoice is made by the
simulator (the real services on an in-memory SQLite database); one PDF is rendered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice
from tabkeeper.pdf import invoice_pdf
from tabkeeper.simulation.run import Simulation
from tests.integration.test_invoice_pdf import pdf_pages

SCENARIO: dict[str, Any] = {
    "settings": {
        "currency": "EUR",
        "trial": None,
        "taxes": {
            "rates": {
                "de_vat": {"name": "VAT", "percent": "19", "countries": ["DE"]},
                "de_levy": {"name": "Levy", "percent": "2.5", "countries": ["DE"]},
            }
        },
    },
    "catalog": {
        "meters": {"sessions": {"kind": "billable_sessions"}},
        "plans": {"pro": {"name": "Pro", "price": "60.00", "interval": "month"}},
        "coupons": {"launch": {"name": "Launch", "percent_off": "20"}},
    },
    "organizations": {
        "acme": {
            "created_at": "2026-04-01T00:00:00Z",
            "payment_method": "card_ok",
            "billing_details": {
                "legal_name": "Acme Bots GmbH",
                "address": "Hauptstr. 1\n10115 Berlin",
                "country": "DE",
                "tax_id": "DE123456789",
            },
        }
    },
    "timeline": [
        {
            "at": "2026-04-01T00:00:00Z",
            "do": "subscribe",
            "org": "acme",
            "plan": "pro",
            "coupon": "launch",
        },
    ],
    "until": "2026-04-02T00:00:00Z",
}


def test_inv7_pdf_of_a_taxed_discounted_invoice_reads_back() -> None:
    """Pro 60.00, Launch -20% = -12.00, base 48.00: VAT 19% = 9.12, Levy 2.5% = 1.20;
    total 58.32."""
    simulation = Simulation(SCENARIO)
    simulation.run()
    with transaction(simulation.engine) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == "INV-000001")).one()
        assert invoice.total_minor == 6000 - 1200 + 912 + 120
        text = pdf_pages(invoice_pdf(session, simulation.platform_id, invoice.id))
    assert len(text) == 1
    page = text[0]
    for shown in (
        "Acme Bots GmbH",
        "Hauptstr. 1",
        "10115 Berlin",
        "Germany",
        "Tax ID: DE123456789",
        "Subtotal €60.00",
        "Launch (20% off) -€12.00",
        "Levy 2.5% €1.20",
        "VAT 19% €9.12",
        "Total €58.32",
    ):
        assert shown in page, (shown, page)
