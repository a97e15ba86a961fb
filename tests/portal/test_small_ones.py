"""The billing tab's small ones of issue 12 (item 8), as plain form posts (no browser):
with `trial: null` the trial plan is not offered (TRI-1); plan cards show limits and
overage prices (PRT-1, CAT-1); the cancel dialog offers the lowest paid plan (SUB-7); an
"Upgrade" beside the usage counter moves to the next plan up by rank, through checkout
without a paid subscription (SUB-3, SUB-4, SUB-5); any member, plain members too, chooses
their usage alerts in the tab (LIM-5). Each refusal changes nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.db.tables_notify import UsageAlertSubscription
from tests.api.billing import ACME, make_billing_world, make_organization, subscribe
from tests.api.conftest import ApiWorld
from tests.portal.test_pages import followed, post, tab, text_of


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme (alice owner, bob billing admin, carol member) with `trial: null`."""
    world = make_billing_world(engine)
    make_organization(world, ACME)
    return world


@pytest.fixture
def subscribed_basic(api: ApiWorld) -> ApiWorld:
    subscribe(api, api.member("acme", "alice"), plan="basic")
    return api


def card_text(client: TestClient, plan: str) -> str:
    html = client.get("/portal/").text
    item = html.split(f'id="plan-{plan}"', 1)[1].split('<li class="plan', 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item))


def test_tri1_with_trial_null_the_trial_plan_is_not_offered(api: ApiWorld) -> None:
    """TRI-1 (issue 12 item 8): the billing world has `trial: null` and a plan `trial`."""
    page = tab(api, "alice").get("/portal/").text
    assert 'id="plan-basic"' in page
    assert 'id="plan-trial"' not in page and "Free trial" not in page


def test_trial_plan_is_not_offered_with_a_trial_either(engine: Engine) -> None:
    api = make_billing_world(engine, {"trial": {"days": 14, "sessions": 50}})
    make_organization(api, ACME)
    assert "Free trial" not in text_of(tab(api, "alice").get("/portal/")).split("Plans", 1)[1]


def test_prt1_plan_cards_show_limits_and_overage_prices(api: ApiWorld) -> None:
    """PRT-1: each plan card lists its limits (0 reads "No …") and what usage over the
    included costs, or that it stops there (a hard stop)."""
    alice = tab(api, "alice")
    basic = card_text(alice, "basic")
    assert "100 minutes included" in basic
    for fact in ("1 agent", "5 team seats", "1 phone number",
                 "Over the included minutes: 0.10 USD each"):  # fmt: skip
        assert fact in basic, (fact, basic)
    pro = card_text(alice, "pro")
    for fact in ("3 agents", "10 team seats", "2 phone numbers",
                 "Stops at the included minutes (no overage)"):  # fmt: skip
        assert fact in pro, (fact, pro)


def test_sub7_the_cancel_dialog_offers_the_lowest_paid_plan(api: ApiWorld) -> None:
    """SUB-7 (seed 003's behaviour): on Pro, the cancel dialog and its page offer Basic,
    the lowest paid plan, as a cheaper way to keep going; on Basic there is none."""
    subscribe(api, api.member("acme", "alice"), plan="pro")
    alice = tab(api, "alice")
    offered = "Before you cancel: Basic at 30.00 USD per month keeps your agents running"
    assert offered in text_of(alice.get("/portal/"))
    page = alice.get("/portal/cancel")
    assert offered in text_of(page)
    assert 'href="/portal/plans/basic/change"' in page.text
    assert "Switch to Basic instead" in text_of(page)


def test_sub7_no_alternative_on_the_lowest_paid_plan(subscribed_basic: ApiWorld) -> None:
    alice = tab(subscribed_basic, "alice")
    assert "Before you cancel" not in text_of(alice.get("/portal/cancel"))


def test_upgrade_without_a_paid_subscription_goes_through_checkout(engine: Engine) -> None:
    """Seed 000's behaviour: on the trial, "Upgrade to Basic" (the next plan up by rank)
    beside the usage counter opens the hosted checkout for Basic."""
    api = make_billing_world(engine, {"trial": {"days": 14, "sessions": 50}})
    make_organization(api, ACME)
    alice = tab(api, "alice")
    usage = alice.get("/portal/").text.split('id="usage"', 1)[1].split("</section>", 1)[0]
    assert "Upgrade to Basic" in usage
    assert 'action="/portal/plans/basic/subscribe"' in usage
    answer = post(alice, "/portal/plans/basic/subscribe")
    assert answer.headers["location"].startswith("/sandbox/checkout/")
    paid = alice.post(answer.headers["location"], data={"card": "4242424242424242"},
                      follow_redirects=False)  # fmt: skip
    assert "Active subscription" in text_of(alice.get(paid.headers["location"]))


def test_upgrade_with_a_card_on_file_changes_the_plan_now(subscribed_basic: ApiWorld) -> None:
    """SUB-4, SUB-5: on Basic with a card, "Upgrade to Pro" changes the plan immediately
    (the prorated difference charged); on Pro, the top plan sold by card, no Upgrade."""
    alice = tab(subscribed_basic, "alice")
    usage = alice.get("/portal/").text.split('id="usage"', 1)[1].split("</section>", 1)[0]
    assert "Upgrade to Pro" in usage and 'name="when" value="immediately"' in usage
    done = text_of(followed(alice, post(alice, "/portal/plans/pro/change", when="immediately")))
    assert "you are now on Pro" in done
    usage = alice.get("/portal/").text.split('id="usage"', 1)[1].split("</section>", 1)[0]
    assert "Upgrade to" not in usage


def test_upgrade_without_a_card_leads_to_manage(subscribed_basic: ApiWorld) -> None:
    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import clear_payment_methods

    with subscribed_basic.world.billing() as b:
        clear_payment_methods(b, organization_by_code(b, "acme"))
    page = tab(subscribed_basic, "alice").get("/portal/").text
    assert re.search(r'href="/portal/payment_method">Add a card to upgrade to Pro</a>', page)


def test_lim5_a_plain_member_chooses_usage_alerts_in_the_tab(api: ApiWorld) -> None:
    """LIM-5: carol (no billing tab) finds "Usage alerts" on her page, checks Minutes and
    saves; the API shows her choice; an unknown meter is refused and changes nothing."""
    carol = tab(api, "carol")
    hidden = carol.get("/portal/")
    assert hidden.status_code == 403 and 'href="/portal/alerts"' in hidden.text
    form = carol.get("/portal/alerts")
    assert form.status_code == 200
    assert 'name="meters" value="minutes"' in form.text
    assert 'name="meters" value="sessions"' in form.text
    saved = followed(carol, post(carol, "/portal/alerts", meters="minutes"))
    assert "Usage alerts saved: you get the e-mails of Minutes." in text_of(saved)
    assert re.search(r'value="minutes" checked', saved.text)
    via_api = api.member("acme", "carol").get("/v1/usage/alerts", organization="acme")
    assert via_api.json()["meters"] == ["minutes"]
    refused = post(carol, "/portal/alerts", meters="parsecs")
    assert refused.status_code == 400 and "'parsecs' is not a meter" in text_of(refused)
    assert api.world.count(UsageAlertSubscription) == 1
    none = followed(carol, post(carol, "/portal/alerts"))
    assert "you get none" in text_of(none)
    assert api.world.count(UsageAlertSubscription) == 0


def test_lim5_the_usage_card_links_to_usage_alerts(subscribed_basic: ApiWorld) -> None:
    page = tab(subscribed_basic, "alice").get("/portal/").text
    usage = page.split('id="usage"', 1)[1].split("</section>", 1)[0]
    assert 'href="/portal/alerts"' in usage
