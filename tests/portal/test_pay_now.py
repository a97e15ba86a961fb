"""SUB-12 in Debian's Chromium: "Pay now" on the Payment pending banner and on an open
invoice's row, and a card saved on the Manage page, collect at once and restore the
subscription; axe-core finds no serious violation on the pages visited (PRT-2)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.api.billing import ACME, make_organization
from tests.api.test_invoices import save_card_without_collecting
from tests.integration.conftest import FEB_1
from tests.portal.conftest import Portal
from tests.portal.test_journeys import CARD_OK, Axe, accessible, card, enter, subscribed


@pytest.fixture
def acme(portal: Portal) -> Portal:
    make_organization(portal.api, ACME)
    return portal


def failing_renewal(portal: Portal, page: Any, axe: Axe, days: int = 1) -> None:
    """Subscribed to Basic on Jan 1; the card then fails, and the clock runs `days` past
    the Feb 1 renewal (declined: past_due; after 7 days' grace: suspended)."""
    subscribed(portal, page, axe)
    save_card_without_collecting(portal.api, "acme", "card_fails_later")
    portal.world.worker().run_until(FEB_1 + timedelta(days=days))
    enter(portal, page, axe)  # the clock moved past the portal session's hour


def test_sub12_pay_now_on_the_banner_turns_the_badge_active(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """SUB-12, SUB-1: past_due shows "Payment issue" and the Payment pending banner, whose
    words say what happens; with a failing card its "Pay now" says the charge was
    declined (role=alert); with a good card (changed on the provider's page) it pays the
    open invoice and the badge turns to "Active subscription"."""
    failing_renewal(acme, page, axe)
    subscription = card(page, "Subscription")
    text = subscription.inner_text()
    assert "Payment issue" in text
    assert "Payment pending." in text and "Pay now or update your card" in text
    assert "we will collect the open invoices at once" in text
    subscription.get_by_role("button", name="Pay now").click()
    declined = page.get_by_role("alert").filter(has_text="was not paid")
    assert "Your card was declined." in declined.inner_text()
    assert "Payment issue" in card(page, "Subscription").inner_text()
    accessible(page, axe)

    save_card_without_collecting(acme.api, "acme", "card_ok")
    card(page, "Subscription").get_by_role("button", name="Pay now").click()
    text = card(page, "Subscription").inner_text()
    assert re.search(r"Paid INV-\d+\. Your subscription is active\.", text)
    assert "Active subscription" in text and "Payment pending" not in text
    assert card(page, "Invoices").get_by_role("button", name=re.compile("^Pay")).count() == 0
    accessible(page, axe)


def test_sub12_pay_now_on_an_open_invoice_row(acme: Portal, page: Any, axe: Axe) -> None:
    """SUB-12: an open invoice's row has its own "Pay now"; paying it marks it Paid and,
    nothing else being owed, the subscription is active again."""
    failing_renewal(acme, page, axe)
    save_card_without_collecting(acme.api, "acme", "card_ok")
    page.reload()
    invoices = card(page, "Invoices")
    row = invoices.get_by_role("row").filter(has_text="Open")
    number = row.get_by_role("rowheader").inner_text()
    row.get_by_role("button", name=f"Pay now: invoice {number}, 30.00 USD").click()
    assert f"Paid {number}." in card(page, "Invoices").inner_text()
    assert "Open" not in card(page, "Invoices").inner_text()
    assert "Active subscription" in card(page, "Subscription").inner_text()
    accessible(page, axe)


def test_sub12_a_good_card_saved_restores_a_suspended_organization(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """SUB-12, SUB-9: after the last retry and the grace the subscription is suspended
    ("Payment issue"); saving a good card on the Manage page collects at once: back on the
    tab the badge is "Active subscription" and the message names the invoice paid."""
    failing_renewal(acme, page, axe, days=10)
    subscription = card(page, "Subscription")
    assert "Payment issue" in subscription.inner_text()
    assert "your service is paused until it is paid" in subscription.inner_text()
    subscription.get_by_role("link", name="Update card").click()
    accessible(page, axe)
    page.get_by_label("Test card").select_option(CARD_OK)
    page.get_by_role("button", name="Save card").click()
    saved = card(page, "Payment method").inner_text()
    assert "Visa ending in 4242 is now your card." in saved
    assert re.search(r"Collected at once: INV-\d+\. Your subscription is active\.", saved)
    text = card(page, "Subscription").inner_text()
    assert "Active subscription" in text and "Payment issue" not in text
    accessible(page, axe)
