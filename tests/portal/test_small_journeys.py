"""The small ones of issue 12 item 8 in Debian's Chromium: "Upgrade" beside the usage
counter through the hosted checkout, the cancel dialog's cheaper plan, the plan cards'
limits and prices, and usage alerts chosen by a plain member (LIM-5); axe-core finds no
serious violation on the pages visited (PRT-2)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.billing import ACME, make_organization
from tests.portal.conftest import Portal
from tests.portal.test_journeys import CARD_OK, Axe, accessible, card, enter


@pytest.fixture
def acme(portal: Portal) -> Portal:
    make_organization(portal.api, ACME)
    return portal


def test_upgrade_beside_the_usage_counter_goes_through_checkout(
    portal_engine: Any, browser: Any, page: Any, axe: Axe
) -> None:
    """Seed 000's behaviour: on the trial, "Upgrade to Basic" beside the usage counter
    opens the hosted checkout for the next plan up by rank; paid, the plan is Basic."""
    from tests.api.billing import make_billing_world
    from tests.portal.conftest import serving

    api = make_billing_world(portal_engine, {"trial": {"days": 14, "sessions": 50}})
    make_organization(api, ACME)
    with serving(api.platform.http.app) as base_url:
        trial = Portal(api, base_url)
        enter(trial, page, axe)
        usage = card(page, "Usage this period")
        usage.get_by_role("button", name="Upgrade to Basic").click()
        page.wait_for_url(re.compile(r"/sandbox/checkout/"))
        page.get_by_label("Test card").select_option(CARD_OK)
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
        page.wait_for_url(re.compile(r"/portal/\?checkout="))
        text = card(page, "Subscription").inner_text()
        assert "Active subscription" in text and "Basic" in text
        assert "Upgrade to Pro" in card(page, "Usage this period").inner_text()
        accessible(page, axe)


def test_cancel_dialog_offers_basic_and_plan_cards_show_limits(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """SUB-7 (seed 003's behaviour), PRT-1: on Pro the cancel dialog offers Basic, the
    lowest paid plan; the plan cards list limits and overage prices."""
    enter(acme, page, axe)
    basic = (
        card(page, "Plans")
        .get_by_role("listitem")
        .filter(has=page.get_by_role("heading", name="Basic"))
    )
    facts = basic.get_by_role("list", name=re.compile("limits and prices")).inner_text()
    assert "1 agent" in facts and "Over the included minutes: 0.10 USD each" in facts
    from tests.portal.test_journeys import subscribe

    subscribe(acme, page, axe, plan="Pro")
    page.wait_for_url(re.compile(r"/portal/\?checkout="))
    card(page, "Subscription").get_by_role("link", name="Cancel subscription").click()
    dialog = page.get_by_role("dialog", name="Cancel subscription")
    assert "Before you cancel: Basic at 30.00 USD per month" in dialog.inner_text()
    accessible(page, axe)
    dialog.get_by_role("link", name="Switch to Basic instead").click()
    assert page.get_by_role("heading", name="Apply subscription updates").is_visible()
    accessible(page, axe)


def test_lim5_a_member_subscribes_to_usage_alerts_in_the_tab(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """LIM-5: carol, a plain member without the billing tab, follows "Usage alerts",
    checks Minutes and saves; her choice shows checked."""
    page.goto(acme.enter_url("acme", "carol"))
    page.get_by_role("link", name="Usage alerts").click()
    accessible(page, axe)
    page.get_by_label("Minutes").check()
    page.get_by_role("button", name="Save alerts").click()
    assert "you get the e-mails of Minutes" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Minutes").is_checked()
    assert not page.get_by_label("Sessions").is_checked()
    accessible(page, axe)
