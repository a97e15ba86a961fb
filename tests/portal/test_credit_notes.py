"""INV-5 in Debian's Chromium: a credit note issued by the platform shows in the billing
tab's Invoices card (number, the invoice it corrects, total, where the money went), and its
PDF, downloaded from there, reads back the same lines and total (pypdf)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import pytest
from pypdf import PdfReader

from tests.api.billing import ACME, GLOBEX, make_organization, subscribe
from tests.portal.conftest import Portal
from tests.portal.test_journeys import Axe, accessible, card, subscribed


@pytest.fixture
def acme(portal: Portal) -> Portal:
    make_organization(portal.api, ACME)
    return portal


def test_inv5_a_credit_note_shows_in_the_tab_and_its_pdf_reads_back(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """INV-5: the platform credits 12.50 of the first invoice's plan line, refunded; the
    tab lists CN-000001 for INV-000001 with 12.50 refunded; its PDF has the line's
    description, the invoice it corrects and the total."""
    subscribed(acme, page, axe)
    invoice = acme.api.platform.get("/v1/invoices", organization="acme").json()["data"][0]
    body = {"lines": [{"line": 0, "amount_minor": 1250}], "refund": True, "reason": "Outage"}
    response = acme.api.platform.post(f"/v1/invoices/{invoice['id']}/credit_notes", body)
    assert response.status_code == 201, response.text
    note = response.json()
    page.reload()
    invoices = card(page, "Invoices")
    row = invoices.get_by_role("row").filter(has_text=note["number"])
    text = row.inner_text()
    assert invoice["number"] in text and "12.50 USD" in text and "Refunded" in text
    accessible(page, axe)
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("Download PDF")).click()
    assert download.value.suggested_filename == f"{note['number']}.pdf"
    pdf = "".join(p.extract_text() for p in PdfReader(str(download.value.path())).pages)
    assert f"Credit note {note['number']}" in pdf and invoice["number"] in pdf
    assert note["lines"][0]["description"] in pdf
    assert "12.50" in pdf


def test_inv5_another_organizations_credit_note_is_not_found(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """INV-5, ACL-3: in acme's tab, globex's credit note PDF and an unknown one answer 404;
    bad ids tried: another organization's, unknown, 0, and past 2**31."""
    make_organization(acme.api, GLOBEX)
    subscribe(acme.api, acme.api.platform, "globex")
    invoice = acme.api.platform.get("/v1/invoices", organization="globex").json()["data"][0]
    body = {"amount_minor": 100, "refund": False}
    response = acme.api.platform.post(f"/v1/invoices/{invoice['id']}/credit_notes", body)
    assert response.status_code == 201, response.text
    theirs = response.json()["id"]
    subscribed(acme, page, axe)
    for note in (theirs, 999999, 0, 2**31):
        url = urljoin(page.url, f"/portal/credit_notes/{note}.pdf")
        assert page.request.get(url).status == 404, note
    assert "Credit notes" not in card(page, "Invoices").inner_text()
