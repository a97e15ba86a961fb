"""The AI spend card in Debian's Chromium (LIM-6, CRD-5, CRD-6, PRT-2): set a spend cap and
see its bar, turn on auto top-up, see a hold as held credits; axe-core finds no serious
violation on the card as it changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.billing import ACME, make_organization, subscribe
from tests.portal.conftest import Portal
from tests.portal.test_journeys import Axe, accessible, card, enter
from tests.portal.test_spend_card import CATALOG


@pytest.fixture
def acme(portal: Portal) -> Portal:
    """acme on Basic (with AI credits for sale) and 100 credits bought."""
    api = portal.api
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    subscribe(api, api.member("acme", "alice"))
    bought = api.member("acme", "alice").post(
        "/v1/credits/top-up", {"organization": "acme", "credits": 100}
    )
    assert bought.status_code == 200, bought.text
    return portal


def test_lim6_crd6_crd5_the_ai_spend_card_in_a_browser(acme: Portal, page: Any, axe: Axe) -> None:
    """LIM-6: a spend cap of 2.00 shows a bar at 50% (1.00 spent); CRD-6: auto top-up on;
    CRD-5: a hold of 30 credits shows as held, apart from the balance."""
    enter(acme, page, axe)
    spend = card(page, "AI spend")
    assert "No spend cap" in spend.inner_text()
    spend.get_by_label("Spend cap per billing period").fill("2.00")
    spend.get_by_role("button", name="Set spend cap").click()
    spend = card(page, "AI spend")
    assert "Spend cap saved." in spend.get_by_role("status").first.inner_text()
    bar = spend.get_by_role("progressbar", name="Spend cap")
    assert bar.get_attribute("value") == "50"
    assert "1.00 USD of 2.00 USD spent this billing period (50%)" in spend.inner_text()
    accessible(page, axe)

    spend.get_by_label("Top up when the balance falls below", exact=True).fill("50")
    spend.get_by_label("Credits each top-up buys", exact=True).fill("200")
    spend.get_by_role("button", name="Turn on auto top-up").click()
    spend = card(page, "AI spend")
    assert "Auto top-up turned on." in spend.inner_text()
    assert "On: 200 credits are bought with your card when the balance falls below 50" in (
        spend.inner_text()
    )
    assert spend.get_by_role("button", name="Turn off auto top-up").is_visible()
    accessible(page, axe)

    held = acme.api.platform.post(
        "/v1/credits/holds", {"organization": "acme", "feature": "smart_reply", "credits": 30}
    )
    assert held.status_code == 201, held.text
    page.reload()
    spend = card(page, "AI spend")
    text = spend.inner_text()
    assert "70 credits" in text and "30 credits" in text
    assert "Held for AI calls in progress" in text
    accessible(page, axe)
