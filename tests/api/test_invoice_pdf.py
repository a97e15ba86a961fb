"""`GET /v1/invoices/{id}.pdf` (INV-3): the invoice as a PDF attachment with the same
lines and totals, beside the JSON route of the same invoice; the same access rules as
`GET /v1/invoices/{id}` (ACL-1, ACL-3)."""

from __future__ import annotations

import io

import pypdf
import pytest

from tests.api.billing import GLOBEX, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld


@pytest.fixture
def invoice(billing_api: ApiWorld) -> dict[str, object]:
    """acme's first invoice (Basic, 30.00), as the owner reads it."""
    make_organization(billing_api)
    make_organization(billing_api, GLOBEX)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    (listed,) = alice.get("/v1/invoices", organization="acme").json()["data"]
    found: dict[str, object] = alice.get(f"/v1/invoices/{listed['id']}").json()
    return found


def pdf_text(response: object) -> str:
    data = response.content  # type: ignore[attr-defined]
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_inv3_the_owner_downloads_the_invoice_pdf_with_its_lines_and_total(
    billing_api: ApiWorld, invoice: dict[str, object]
) -> None:
    """INV-3: the JSON's `pdf_url` downloads an application/pdf attachment named after the
    invoice's number, showing each line's description and amount and the total; the
    JSON route of the same id still answers JSON."""
    alice = billing_api.member("acme", "alice")
    assert invoice["pdf_url"] == f"/v1/invoices/{invoice['id']}.pdf"
    response = alice.get(str(invoice["pdf_url"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="INV-000001.pdf"'
    text = pdf_text(response)
    lines = invoice["lines"]
    assert isinstance(lines, list) and len(lines) == 1
    assert " ".join(lines[0]["description"].split()) in text
    assert "1 $30.00 $30.00" in text
    assert "Total $30.00" in text and "Amount due $30.00" in text
    assert "Invoice INV-000001" in text and "acme" in text

    as_json = alice.get(f"/v1/invoices/{invoice['id']}")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == invoice


def test_inv3_the_platform_key_downloads_any_of_its_invoices(
    billing_api: ApiWorld, invoice: dict[str, object]
) -> None:
    """INV-3, ACL-3: the platform's API key reads every invoice of the platform."""
    response = billing_api.platform.get(f"/v1/invoices/{invoice['id']}.pdf")
    assert response.status_code == 200, response.text
    assert "Total $30.00" in pdf_text(response)
    listed = billing_api.platform.get("/v1/invoices").json()["data"]
    assert [row["pdf_url"] for row in listed] == [invoice["pdf_url"]]


def test_inv3_pdf_refusals_follow_the_invoice_access_rules(
    billing_api: ApiWorld, invoice: dict[str, object]
) -> None:
    """INV-3, ACL-1, ACL-3: a plain member is refused (403); another organization's owner
    finds no such invoice (404), as for an id that does not exist; a bad id is 422;
    without credentials 401."""
    path = f"/v1/invoices/{invoice['id']}.pdf"
    carol = billing_api.member("acme", "carol")
    gina = billing_api.member("globex", "gina")
    problem(carol.get(path), 403, "forbidden")
    assert problem(gina.get(path), 404, "not_found") == problem(
        gina.get(f"/v1/invoices/{invoice['id']}"), 404, "not_found"
    )
    problem(billing_api.platform.get("/v1/invoices/999999.pdf"), 404, "not_found")
    assert billing_api.platform.get("/v1/invoices/abc.pdf").status_code == 422
    assert billing_api.platform.http.get(path).status_code == 401


def test_inv3_the_pdf_route_is_in_the_openapi_document(billing_api: ApiWorld) -> None:
    """INV-3: the document declares the PDF route with an application/pdf response."""
    document = billing_api.platform.http.get("/openapi.json").json()
    operation = document["paths"]["/v1/invoices/{invoice_id}.pdf"]["get"]
    assert "application/pdf" in operation["responses"]["200"]["content"]
    assert "/v1/invoices/{invoice_id}" in document["paths"]
