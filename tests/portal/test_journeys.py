"""The billing tab's journeys in Debian's Chromium (PRT-1, PRT-2): each drives the tab as
a member does, by keyboard-reachable controls found by their accessible names, and runs
axe-core on every page it visits: no serious or critical violation anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pypdf import PdfReader

from tests.api.billing import ACME, make_organization
from tests.portal.conftest import Portal
from tests.portal.test_pages import with_credits

Axe = Callable[[Any], list[dict[str, Any]]]
CARD_OK, CARD_DECLINED, MASTERCARD_OK = "4242424242424242", "4000000000000002", "5555555555554444"


@pytest.fixture
def acme(portal: Portal) -> Portal:
    make_organization(portal.api, ACME)
    return portal


def accessible(page: Any, axe: Axe) -> None:
    """PRT-2: no serious or critical axe-core violation on the page as it is."""
    assert axe(page) == []


def enter(portal: Portal, page: Any, axe: Axe, member: str = "alice") -> None:
    page.goto(portal.enter_url("acme", member))
    accessible(page, axe)


def subscribe(
    portal: Portal, page: Any, axe: Axe, plan: str = "Basic", card: str = CARD_OK
) -> None:
    """Subscribe through the hosted checkout page, as the member does."""
    page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=plan)).get_by_role(
        "button", name="Subscribe"
    ).click()
    page.wait_for_url(re.compile(r"/sandbox/checkout/"))
    accessible(page, axe)
    page.get_by_label("Test card").select_option(card)
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def subscribed(portal: Portal, page: Any, axe: Axe, plan: str = "Basic") -> None:
    enter(portal, page, axe)
    subscribe(portal, page, axe, plan)
    page.wait_for_url(re.compile(r"/portal/\?checkout="))


def card(page: Any, title: str) -> Any:
    return page.locator("section").filter(has=page.get_by_role("heading", name=title, exact=True))


def test_subscribe_with_card_ok_sub_3_prt_1(acme: Portal, page: Any, axe: Axe) -> None:
    """SUB-3, PRT-1, SUB-1: Subscribe → hosted checkout → paid → back on the tab with the
    "Active subscription" card, its price and next billing date."""
    subscribed(acme, page, axe)
    subscription = card(page, "Subscription")
    assert "Payment received: your subscription has started." in subscription.inner_text()
    text = subscription.inner_text()
    assert "Active subscription" in text and "30.00 USD per month" in text
    assert "2026-02-01" in text
    accessible(page, axe)


def test_a_declined_card_says_so_sub_3(acme: Portal, page: Any, axe: Axe) -> None:
    """SUB-3, PAY-1: a declined card shows "Your card was declined." and starts nothing;
    back on the tab the plan is still to choose."""
    enter(acme, page, axe)
    subscribe(acme, page, axe, card=CARD_DECLINED)
    assert page.get_by_role("alert").filter(has_text="Your card was declined.").count() == 1
    accessible(page, axe)
    page.goto(f"{acme.base_url}/portal/")
    assert "No subscription" in card(page, "Subscription").inner_text()
    accessible(page, axe)


def test_change_plan_with_each_timing_and_cancel_the_scheduled_change_sub_4(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """SUB-4: the Apply subscription updates dialog (a modal that closes on Escape) with
    End of the current period, On custom date and Immediately; the Upcoming subscription
    card with its Starts on date; Cancel → the "Cancel scheduled plan" dialog."""
    subscribed(acme, page, axe)
    plans = card(page, "Plans")

    def choose(plan: str, timing: str, day: str | None = None) -> None:
        plans.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name=plan)
        ).get_by_role("link", name="Subscribe").click()
        dialog = page.get_by_role("dialog", name="Apply subscription updates")
        assert dialog.is_visible()
        accessible(page, axe)
        dialog.get_by_label(timing).check()
        if day is not None:
            dialog.get_by_label("Start date").fill(day)
        dialog.get_by_role("button", name="Update subscription").click()

    # Escape closes the dialog and changes nothing.
    plans.get_by_role("link", name="Subscribe").first.click()
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").count() == 0

    choose("Pro", "End of the current period")
    upcoming = page.locator("#upcoming")
    assert "Upcoming subscription" in upcoming.inner_text()
    assert "Starts on" in upcoming.inner_text() and "2026-02-01" in upcoming.inner_text()
    accessible(page, axe)

    choose("Pro", "On custom date", "2026-01-20")
    assert "2026-01-20" in page.locator("#upcoming").inner_text()

    page.locator("#upcoming").get_by_role("link", name=re.compile("Cancel")).click()
    confirm = page.get_by_role("dialog", name="Cancel scheduled plan")
    accessible(page, axe)
    confirm.get_by_role("button", name="Cancel scheduled plan").click()
    assert "The scheduled plan change was canceled." in card(page, "Subscription").inner_text()
    assert page.locator("#upcoming").count() == 0

    choose("Pro", "Immediately")
    text = card(page, "Subscription").inner_text()
    assert "you are now on Pro" in text and "60.00 USD per month" in text
    accessible(page, axe)


def test_session_limit_invalid_then_valid_then_reset_lim_4(
    acme: Portal, page: Any, axe: Axe
) -> None:
    """LIM-4: 0 is refused with the validation message next to the field; 25 is set;
    Reset limit goes back to the plan's base limit."""
    subscribed(acme, page, axe)
    limit = card(page, "Session limit")
    limit.get_by_label("Session limit").fill("0")
    limit.get_by_role("button", name="Set limit", exact=True).click()
    alert = card(page, "Session limit").get_by_role("alert")
    assert alert.inner_text() == "The session limit must be a whole number greater than zero."
    accessible(page, axe)
    limit = card(page, "Session limit")
    limit.get_by_label("Session limit").fill("25")
    limit.get_by_role("button", name="Set limit", exact=True).click()
    text = card(page, "Session limit").inner_text()
    assert "Session limit set to 25 sessions." in text and "25 sessions" in text
    accessible(page, axe)
    card(page, "Session limit").get_by_role("button", name="Reset limit").click()
    text = card(page, "Session limit").inner_text()
    assert "Session limit reset to the plan's base limit." in text and "No limit" in text


def test_add_and_remove_slots_add_2_add_3(acme: Portal, page: Any, axe: Axe) -> None:
    """ADD-2: the Add Slots page shows the price per slot and the new monthly total as
    the quantity changes (htmx); "Slots added successfully."; the Active add-on card.
    ADD-3: removing below what is in use is refused with how many to archive; else
    "Slots removed successfully."."""
    subscribed(acme, page, axe)
    addons = card(page, "Add-ons & extras")
    addons.get_by_role("link", name="Add slots").click()
    accessible(page, axe)
    assert "New monthly total" in page.locator("#quote").inner_text()
    page.get_by_label("Quantity").fill("2")
    page.wait_for_function(
        "() => document.querySelector('#quote')?.innerText.includes('50.00 USD')"
    )
    assert "Price per slot" in page.locator("#quote").inner_text()
    page.get_by_role("button", name="Add slots").click()
    addons = card(page, "Add-ons & extras")
    text = addons.inner_text()
    assert "Slots added successfully." in text
    assert "Active add-on" in text and "+2 slots" in text and "20.00 USD" in text
    accessible(page, axe)

    owner = acme.api.member("acme", "alice")
    for agent in ("a1", "a2", "a3"):
        assert owner.post("/v1/agents", {"organization": "acme", "code": agent}).status_code == 201
    addons.get_by_role("link", name="Remove slots").click()
    page.get_by_label("Slots to remove").fill("1")
    page.get_by_role("button", name="Remove slots").click()
    alert = page.get_by_role("alert")
    assert "archive or delete 1 agent first" in alert.inner_text()
    accessible(page, axe)
    agents = owner.get("/v1/agents", organization="acme").json()["data"]
    assert owner.post(f"/v1/agents/{agents[-1]['id']}/archive").status_code == 200
    page.get_by_role("button", name="Remove slots").click()
    assert "Slots removed successfully." in card(page, "Add-ons & extras").inner_text()


def test_top_up_credits_crd_1(acme: Portal, page: Any, axe: Axe) -> None:
    """CRD-1: the AI credits card: balance, Top up (invoiced at once), the new balance."""
    with_credits(acme.api)
    subscribed(acme, page, axe)
    credits = card(page, "AI credits")
    assert "0 credits" in credits.inner_text()
    credits.get_by_label("Credits to buy").fill("250")
    credits.get_by_role("button", name="Top up").click()
    text = card(page, "AI credits").inner_text()
    assert "Credits added successfully." in text and "250 credits" in text
    assert "2.50 USD" in card(page, "Invoices").inner_text()
    accessible(page, axe)


def test_download_an_invoice_pdf_inv_3(acme: Portal, page: Any, axe: Axe) -> None:
    """INV-3: the invoice's PDF shows the same total as the Invoices table."""
    subscribed(acme, page, axe)
    invoices = card(page, "Invoices")
    row = invoices.get_by_role("row").nth(1)
    total = row.get_by_role("cell").nth(1).inner_text()
    assert total == "30.00 USD"
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("Download PDF")).click()
    path = download.value.path()
    text = "".join(p.extract_text() for p in PdfReader(str(path)).pages)
    assert "30.00" in text


def test_update_the_payment_method_pay_2(acme: Portal, page: Any, axe: Axe) -> None:
    """PAY-2: Manage → the card form; a declined card is refused; a new card becomes the
    one on file (brand and last 4)."""
    subscribed(acme, page, axe)
    assert "Visa ending in 4242" in card(page, "Payment method").inner_text()
    card(page, "Payment method").get_by_role("link", name="Manage payment method").click()
    accessible(page, axe)
    page.get_by_label("Test card").select_option(CARD_DECLINED)
    page.get_by_role("button", name="Save card").click()
    assert page.get_by_role("alert").inner_text() == "Your card was declined."
    accessible(page, axe)
    page.get_by_label("Test card").select_option(MASTERCARD_OK)
    page.get_by_role("button", name="Save card").click()
    assert "Mastercard ending in 4444" in card(page, "Payment method").inner_text()
    accessible(page, axe)


def test_cancel_and_resume_sub_7(acme: Portal, page: Any, axe: Axe) -> None:
    """SUB-7: Cancel subscription (confirmed in a dialog) → "Canceled subscription" with
    the expiration date; Resume → "Active subscription"."""
    subscribed(acme, page, axe)
    card(page, "Subscription").get_by_role("link", name="Cancel subscription").click()
    dialog = page.get_by_role("dialog", name="Cancel subscription")
    accessible(page, axe)
    dialog.get_by_role("button", name="Cancel subscription").click()
    text = card(page, "Subscription").inner_text()
    assert "Canceled subscription" in text and "Expires on" in text and "2026-02-01" in text
    accessible(page, axe)
    card(page, "Subscription").get_by_role("button", name="Resume subscription").click()
    text = card(page, "Subscription").inner_text()
    assert "Your subscription is resumed." in text and "Active subscription" in text


def test_the_tab_is_absent_for_a_plain_member_acl_2(acme: Portal, page: Any, axe: Axe) -> None:
    """ACL-2: a member without billing rights gets no Billing tab and no billing data."""
    page.goto(acme.enter_url("acme", "carol"))
    assert page.get_by_role("link", name="Billing").count() == 0
    assert page.get_by_role("heading", name="Subscription").count() == 0
    assert "owner and billing admins" in page.locator("main").inner_text()
    accessible(page, axe)
