"""Printing a document to PDF (INV-3, INV-5): one Jinja environment over pdf/templates,
one WeasyPrint call that fetches nothing but `data:` URLs. The invoice and the credit note
are printed through here."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from weasyprint import HTML
from weasyprint.urls import URLFetcher


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("tabkeeper.pdf", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def document_html(template: str, **context: Any) -> str:
    """The HTML a PDF is printed from: pdf/templates/`template` rendered with `context`."""
    return _environment().get_template(template).render(**context)


def print_pdf(html: str) -> bytes:
    """`html` printed to PDF; nothing is fetched but `data:` URLs."""
    fetcher = URLFetcher(allowed_protocols=("data",), timeout=1)
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
