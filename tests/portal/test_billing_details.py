"""The "Billing details" card in Debian's Chromium (INV-6, INV-7, PRT-1, PRT-2): an owner
saves the organization's billing details and redeems a coupon by its code; refusals are
shown next to the form with nothing changed; both forms work with JavaScript off (plain
posts with the CSRF token); axe-core finds no serious violation on the pages visited.

Bad inputs tried in the tab: country "XX" (not ISO 3166), a German VAT number too short,
an unknown coupon code, a coupon for another plan."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.api.billing import ACME, make_billing_world, make_organization
from tests.api.test_discounts import CATALOG, SETTINGS
from tests.integration.conftest import FEB_1
from tests.portal.conftest import Portal, serving
from tests.portal.test_journeys import Axe, accessible, card, enter, subscribe


@pytest.fixture
def taxed(browser: Any, portal_engine: Any) -> Any:
    """A server whose catalog has coupons and whose settings tax Germany at 19%."""
    api = make_billing_world(portal_engine)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG, "settings": SETTINGS})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    with serving(api.platform.http.app) as base_url:
        yield Portal(api, base_url)


def _fill(page: Any, **values: str) -> None:
    details = card(page, "Billing details")
    for label, value in values.items():
        details.get_by_label(label, exact=True).fill(value)
    details.get_by_role("button", name="Save billing details").click()


def test_inv7_inv6_billing_details_and_coupon_in_the_tab(
    taxed: Portal, page: Any, axe: Axe
) -> None:
    enter(taxed, page, axe)
    subscribe(taxed, page, axe)
    page.wait_for_url(re.compile(r"/portal/\?checkout="))
    _fill(page, **{"Legal name": "Acme Bots GmbH", "Country": "XX"})
    details = card(page, "Billing details")
    assert "is not an ISO 3166-1 alpha-2 country code" in details.get_by_role("alert").inner_text()
    assert details.get_by_label("Legal name", exact=True).input_value() == "Acme Bots GmbH"
    accessible(page, axe)
    _fill(page, **{"Country": "DE", "Tax ID (optional)": "DE12345"})
    assert "is not a VAT number of DE" in card(page, "Billing details").inner_text()
    _fill(page, **{"Address": "Hauptstr. 1\n10115 Berlin", "Tax ID (optional)": "DE 123456789"})
    details = card(page, "Billing details")
    assert "Billing details saved." in details.get_by_role("status").inner_text()
    assert details.get_by_label("Tax ID (optional)").input_value() == "DE123456789"
    accessible(page, axe)
    for code, refusal in (("nope", "No coupon 'nope'."), ("pro_only", "is not for the plan")):
        details.get_by_label("Coupon code").fill(code)
        details.get_by_role("button", name="Redeem").click()
        details = card(page, "Billing details")
        assert refusal in details.get_by_role("alert").inner_text()
    accessible(page, axe)
    details.get_by_label("Coupon code").fill("launch")
    details.get_by_role("button", name="Redeem").click()
    details = card(page, "Billing details")
    assert "Coupon Launch applied" in details.get_by_role("status").inner_text()
    assert "Applied: Launch, 20% off for 3 periods (0 used)." in details.inner_text()
    accessible(page, axe)
    taxed.world.worker().run_until(FEB_1 + timedelta(hours=1))
    renewal = taxed.api.platform.get("/v1/invoices", organization="acme").json()["data"][-1]
    lines = taxed.api.platform.get(f"/v1/invoices/{renewal['id']}").json()["lines"]
    assert [(line["kind"], line["amount_minor"]) for line in lines] == [
        ("subscription", 3000), ("discount", -600), ("tax", 456)
    ]  # fmt: skip


def test_inv7_forms_work_without_javascript(taxed: Portal, browser: Any) -> None:
    """With JavaScript off, both forms post as plain HTML forms (CSRF token included)."""
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(taxed.enter_url("acme", "bob"))
        details = card(page, "Billing details")
        details.get_by_label("Legal name", exact=True).fill("Acme Bots GmbH")
        details.get_by_label("Country").fill("FR")
        details.get_by_role("button", name="Save billing details").click()
        assert "Billing details saved." in card(page, "Billing details").inner_text()
        details = card(page, "Billing details")
        details.get_by_label("Coupon code").fill("launch")
        details.get_by_role("button", name="Redeem").click()
        assert "Coupon Launch applied" in card(page, "Billing details").inner_text()
    finally:
        context.close()
    shown = taxed.api.platform.get("/v1/organizations/acme/billing_details").json()
    assert (shown["legal_name"], shown["country"]) == ("Acme Bots GmbH", "FR")
