"""The billing tab's pages through the ASGI app, without a browser (PRT-1, PRT-2, ACL-2):
the session cookie, each card, who sees the tab, and every action as a plain form post
(no JavaScript): 303 back with the service's message, or the page again with the
refusal next to the control, changing nothing."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine

from tabkeeper.domain.money import Currency, Money
from tabkeeper.portal.web import CSRF_FIELD, SESSION_COOKIE, csrf_token
from tests.api.billing import ACME, make_billing_world, make_organization, subscribe
from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.conftest import ApiWorld
from tests.integration.conftest import FEB_1


def tab(api: ApiWorld, member: str, organization: str = "acme") -> TestClient:
    """A browser of its own, entered into the billing tab as `member`."""
    client = TestClient(api.platform.http.app, headers={"origin": "http://testserver"})
    token = api.member(organization, member).token
    entered = client.get("/portal/enter", params={"token": token}, follow_redirects=False)
    assert entered.status_code == 303, entered.text
    return client


def text_of(response: Any) -> str:
    """The page's text, tags stripped and spaces collapsed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)))


def post(client: TestClient, path: str, **form: str) -> Any:
    """A form post of the tab, with the CSRF token its forms carry."""
    form.setdefault(CSRF_FIELD, csrf_token(client.cookies.get(SESSION_COOKIE) or ""))
    return client.post(path, data=form, follow_redirects=False)


def followed(client: TestClient, response: Any) -> Any:
    """Follow a 303 as a browser does (the flash cookie rides along)."""
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"])


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    world = make_billing_world(engine)
    make_organization(world, ACME)
    return world


@pytest.fixture
def alice(api: ApiWorld) -> TestClient:
    return tab(api, "alice")


@pytest.fixture
def subscribed(api: ApiWorld) -> ApiWorld:
    subscribe(api, api.member("acme", "alice"), plan="basic")
    return api


# -- entering -------------------------------------------------------------------------------


def test_entry_keeps_the_session_in_a_strict_httponly_cookie_prt_2(api: ApiWorld) -> None:
    """PRT-2: /portal/enter?token= keeps the token in an HttpOnly, SameSite=Strict cookie
    and sends the member to /portal/ (303)."""
    client = TestClient(api.platform.http.app)
    token = api.member("acme", "alice").token
    entered = client.get("/portal/enter", params={"token": token}, follow_redirects=False)
    assert entered.status_code == 303
    assert entered.headers["location"] == "/portal/"
    cookie = next(c for c in entered.headers.get_list("set-cookie") if c.startswith("tk_portal="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    page = client.get("/portal/")
    assert page.status_code == 200
    assert "<h1>Billing</h1>" in page.text


def test_the_api_portal_session_url_also_enters(api: ApiWorld) -> None:
    """The URL POST /v1/portal_sessions answers (/portal/enter?token=...) enters the tab."""
    answer = api.platform.post("/v1/portal_sessions", {"organization": "acme", "member": "bob"})
    path = answer.json()["url"].split("127.0.0.1:8000", 1)[1]
    assert path.startswith("/portal/enter?token=")
    client = TestClient(api.platform.http.app)
    assert client.get(path).status_code == 200
    assert client.get("/portal", follow_redirects=False).headers["location"] == "/portal/"


@pytest.mark.parametrize("token", ["ps_forged.signature", "nonsense", "ps_" + "a" * 40])
def test_a_forged_token_is_a_401_page(api: ApiWorld, token: str) -> None:
    """ACL-3: a forged portal session opens nothing."""
    client = TestClient(api.platform.http.app)
    answer = client.get("/portal/enter", params={"token": token}, follow_redirects=False)
    assert answer.status_code == 401
    assert "text/html" in answer.headers["content-type"]
    assert "Your billing session has ended" in answer.text
    assert "tk_portal=" not in answer.headers.get("set-cookie", "")


def test_an_expired_session_is_a_401_page(api: ApiWorld, alice: TestClient) -> None:
    """A portal session lasts an hour; after that every page is a 401 page."""
    api.world.clock.advance(timedelta(hours=2))
    answer = alice.get("/portal/")
    assert answer.status_code == 401
    assert "Open the billing tab from your account" in answer.text


def test_no_cookie_is_a_401_page(api: ApiWorld) -> None:
    answer = TestClient(api.platform.http.app).get("/portal/")
    assert answer.status_code == 401


def test_a_strict_cookie_withheld_on_arrival_reloads_once(api: ApiWorld) -> None:
    """A link from another site withholds the Strict cookie; the Lax marker makes the page
    reload itself once (same-site), and a second miss is a 401 page."""
    client = TestClient(api.platform.http.app)
    client.cookies.set("tk_portal_entered", "1", path="/portal")
    first = client.get("/portal/")
    assert first.status_code == 200 and 'http-equiv="refresh"' in first.text
    assert client.get("/portal/?reloaded=1").status_code == 401


def test_a_post_from_another_origin_is_refused(subscribed: ApiWorld) -> None:
    """CSRF: a form post from another site changes nothing (403)."""
    alice = tab(subscribed, "alice")
    answer = alice.post(
        "/portal/limit", data={"limit": "5"}, headers={"origin": "https://evil.test"}
    )
    assert answer.status_code == 403
    assert "Session limit set" not in answer.text


# -- ACL-2 ---------------------------------------------------------------------------------


def test_a_plain_member_gets_no_billing_tab_acl_2(subscribed: ApiWorld) -> None:
    """ACL-2: a member without billing rights sees no Billing tab and no billing data."""
    carol = tab(subscribed, "carol")
    answer = carol.get("/portal/")
    assert answer.status_code == 403
    assert 'aria-current="page">Billing' not in answer.text
    assert "owner and billing admins" in answer.text
    for billing_data in ("Basic", "30.00", "Next billing date", "Invoices", "Subscribe"):
        assert billing_data not in answer.text
    assert post(carol, "/portal/limit", limit="5").status_code == 403
    assert carol.get("/portal/payment_method").status_code == 403


def test_the_platform_turns_the_tab_off_acl_2(engine: Engine) -> None:
    """ACL-2: with `billing_tab: false` nobody sees the tab, owners included."""
    api = make_billing_world(engine, {"billing_tab": False})
    make_organization(api, ACME)
    answer = tab(api, "alice").get("/portal/")
    assert answer.status_code == 404
    assert "Billing is handled outside this portal" in answer.text
    assert "Plans" not in answer.text


def test_a_billing_admin_sees_the_tab_but_add_ons_are_owner_only_acl_1(
    subscribed: ApiWorld,
) -> None:
    """ACL-1: a billing admin manages billing; add-ons are the owner's alone."""
    bob = tab(subscribed, "bob")
    page = bob.get("/portal/")
    assert page.status_code == 200
    assert "Add-ons are Owner Only" in page.text
    assert "/portal/addons/extra_agent/add" not in page.text
    refused = post(bob, "/portal/addons/extra_agent/add", quantity="1")
    assert refused.status_code == 409 and "Owner Only" in refused.text


# -- the cards ------------------------------------------------------------------------------


def test_no_subscription_offers_the_plans_prt_1(alice: TestClient) -> None:
    """PRT-1, CAT-2: Subscribe on each public plan, Book a demo (no price) on sales-led."""
    page = alice.get("/portal/")
    assert "No subscription" in page.text
    assert 'action="/portal/plans/basic/subscribe"' in page.text
    assert 'action="/portal/plans/enterprise/demo"' in page.text
    enterprise = page.text.split('id="plan-enterprise"', 1)[1].split("</li>", 1)[0]
    assert "USD" not in enterprise


def test_the_subscription_card_of_an_active_plan_sub_1(subscribed: ApiWorld) -> None:
    """SUB-1, PRT-1: badge, plan, price, next billing date; usage with its level (USE-7);
    the card on file (PAY-2); the first invoice (INV-2)."""
    text = text_of(tab(subscribed, "alice").get("/portal/"))
    assert "Active subscription" in text
    assert "Plan Basic" in text and "30.00 USD per month" in text
    assert "Next billing date 2026-02-01" in text
    assert "Minutes" in text and "0 of 100 used, 100 left." in text
    assert "Under 50% used" in text
    assert "Visa ending in 4242" in text
    assert re.search(r"INV-\d+ 2026-01-01 30.00 USD Paid Download PDF", text)
    assert "Your current plan" in text


def test_the_payment_pending_banner_sub_8(subscribed: ApiWorld) -> None:
    """SUB-1, SUB-8: a failed renewal shows "Payment issue" and the "Payment pending"
    banner, with the end of the grace period."""
    alice = tab(subscribed, "alice")
    assert followed(alice, post(alice, "/portal/payment_method", card="card_fails_later"))
    world = subscribed.world
    world.clock.advance(FEB_1 - world.clock.now())
    world.worker().tick()
    text = text_of(tab(subscribed, "alice").get("/portal/"))
    assert "Payment issue" in text
    assert "Payment pending." in text and "extended until 2026-02-08" in text


def test_a_trial_shows_sessions_and_days_left_tri_1(engine: Engine) -> None:
    """TRI-1: the trial card shows trial sessions left and trial days left; no Session
    limit card on the trial (LIM-4)."""
    api = make_billing_world(engine, {"trial": {"days": 14, "sessions": 50}})
    make_organization(api, ACME)
    text = text_of(tab(api, "alice").get("/portal/"))
    assert "Trial subscription" in text
    assert "Trial sessions left 50 of 50" in text
    assert "Trial days left 14" in text
    assert "Session limit" not in text


# -- actions without JavaScript ------------------------------------------------------------


def test_session_limit_invalid_then_valid_then_reset_lim_4(subscribed: ApiWorld) -> None:
    """LIM-4: a limit must be a whole number greater than zero; the refusal is next to the
    field and changes nothing; a valid one is set; Reset limit returns to the base."""
    alice = tab(subscribed, "alice")
    for bad in ("0", "-3", "2.5", "many"):
        refused = post(alice, "/portal/limit", limit=bad)
        assert refused.status_code == 400
        assert "The session limit must be a whole number greater than zero." in refused.text
        assert 'aria-invalid="true"' in refused.text and 'role="alert"' in refused.text
    shown = followed(alice, post(alice, "/portal/limit", limit="120"))
    assert "Session limit set to 120 sessions." in shown.text
    assert "120 sessions" in text_of(shown)
    reset = text_of(followed(alice, post(alice, "/portal/limit/reset")))
    assert "Session limit reset to the plan's base limit." in reset
    assert "No limit" in reset


def test_a_demo_request_is_received_cat_2(alice: TestClient) -> None:
    """CAT-2: Book a demo → "Request received"."""
    page = followed(alice, post(alice, "/portal/plans/enterprise/demo"))
    assert 'role="status" id="plans-message">Request received</p>' in page.text


def test_subscribe_goes_to_the_hosted_checkout_sub_3(alice: TestClient) -> None:
    """SUB-3: Subscribe opens the provider's hosted checkout, which sends the member back
    to the tab saying how it went."""
    answer = post(alice, "/portal/plans/basic/subscribe")
    assert answer.status_code == 303
    checkout = answer.headers["location"]
    assert checkout.startswith("/sandbox/checkout/")
    paid = alice.post(checkout, data={"card": "4242424242424242"}, follow_redirects=False)
    assert paid.status_code == 303 and "/portal/?checkout=" in paid.headers["location"]
    back = alice.get(paid.headers["location"])
    assert "Payment received: your subscription has started." in back.text
    assert "Active subscription" in back.text


def test_the_change_dialog_has_a_page_without_script_sub_4(subscribed: ApiWorld) -> None:
    """SUB-4: "Apply subscription updates" with Immediately, End of the current period and
    On custom date, as a page when there is no script."""
    alice = tab(subscribed, "alice")
    page = alice.get("/portal/plans/pro/change")
    text = text_of(page)
    for label in ("Immediately", "End of the current period", "On custom date"):
        assert label in text
    assert 'type="date"' in page.text
    refused = post(alice, "/portal/plans/pro/change", when="date", date="")
    assert refused.status_code == 400 and "Choose the date" in refused.text
    refused = post(alice, "/portal/plans/pro/change", when="date", date="2025-12-01")
    assert refused.status_code == 409 and "is not in the future" in refused.text
    scheduled = followed(alice, post(alice, "/portal/plans/pro/change", when="period_end"))
    text = text_of(scheduled)
    assert "Pro starts on 2026-02-01." in text
    assert "Upcoming subscription" in text and "Starts on 2026-02-01" in text
    confirm = alice.get("/portal/upcoming/cancel")
    assert "Cancel scheduled plan" in confirm.text
    canceled = followed(alice, post(alice, "/portal/upcoming/cancel"))
    assert "The scheduled plan change was canceled." in canceled.text
    assert "Upcoming subscription" not in canceled.text


def test_slots_quote_add_and_remove_add_2_add_3(subscribed: ApiWorld) -> None:
    """ADD-2: the Add Slots page shows price per slot and the new monthly total; adding
    says "Slots added successfully." and shows the Active add-on card. ADD-3: removing
    below what is in use is refused, saying how many to archive or delete."""
    alice = tab(subscribed, "alice")
    quote = text_of(alice.get("/portal/addons/extra_agent/add", params={"quantity": "2"}))
    assert "Price per slot 10.00 USD per month" in quote
    assert "New monthly total 50.00 USD" in quote
    fragment = alice.get(
        "/portal/addons/extra_agent/add", params={"quantity": "0"}, headers={"hx-request": "true"}
    )
    assert fragment.status_code == 200 and "add or remove from 1 to 1,000 slots" in fragment.text
    added = followed(alice, post(alice, "/portal/addons/extra_agent/add", quantity="2"))
    text = text_of(added)
    assert "Slots added successfully." in text
    assert "Active add-on" in text and "+2 slots" in text and "Monthly cost 20.00 USD" in text
    owner = subscribed.member("acme", "alice")
    for agent in ("a1", "a2", "a3"):
        assert owner.post("/v1/agents", {"organization": "acme", "code": agent}).status_code == 201
    preview = text_of(alice.get("/portal/addons/extra_agent/remove", params={"quantity": "1"}))
    assert "New total capacity 2 agents" in preview and "New monthly cost 40.00 USD" in preview
    refused = post(alice, "/portal/addons/extra_agent/remove", quantity="1")
    assert refused.status_code == 409
    assert "archive or delete 1 agent first" in refused.text
    agents = owner.get("/v1/agents", organization="acme").json()["data"]
    archived = owner.post(f"/v1/agents/{agents[-1]['id']}/archive")
    assert archived.status_code == 200, archived.text
    removed = followed(alice, post(alice, "/portal/addons/extra_agent/remove", quantity="1"))
    assert "Slots removed successfully." in removed.text


def test_cancel_and_resume_sub_7(subscribed: ApiWorld) -> None:
    """SUB-7: canceled at the period's end ("Canceled subscription" with the expiration
    date), then resumed."""
    alice = tab(subscribed, "alice")
    assert "Cancel subscription" in alice.get("/portal/cancel").text
    canceled = text_of(followed(alice, post(alice, "/portal/cancel")))
    assert "Canceled subscription" in canceled and "Expires on 2026-02-01" in canceled
    assert "It stays usable until 2026-02-01." in canceled
    resumed = text_of(followed(alice, post(alice, "/portal/resume")))
    assert "Your subscription is resumed." in resumed and "Active subscription" in resumed


def test_a_declined_card_saves_nothing_pay_2(subscribed: ApiWorld) -> None:
    """PAY-2: a declined card is refused on the Manage page; the card on file stays."""
    alice = tab(subscribed, "alice")
    refused = post(alice, "/portal/payment_method", card="4000000000000002")
    assert refused.status_code == 409 and "Your card was declined." in refused.text
    saved = followed(alice, post(alice, "/portal/payment_method", card="5555555555554444"))
    assert "Mastercard ending in 4444" in saved.text


def test_an_invoice_downloads_as_a_pdf_inv_3(subscribed: ApiWorld) -> None:
    """INV-3: the PDF shows the invoice's total."""
    alice = tab(subscribed, "alice")
    page = alice.get("/portal/")
    link = re.search(r'href="(/portal/invoices/\d+\.pdf)"', page.text)
    assert link is not None
    pdf = alice.get(link.group(1))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert str(Money(3000, Currency.of("USD"))).split()[0] in text
    assert alice.get("/portal/invoices/999999.pdf").status_code == 404


def with_credits(api: ApiWorld) -> None:
    """A catalog version that sells credits (0.01 USD each) and lets Basic use one AI
    feature, at 2 credits a use."""
    plans = {**BILLING_CATALOG["plans"]}
    plans["basic"] = {**plans["basic"], "features": ["smart_reply"]}
    catalog = {
        **BILLING_CATALOG,
        "plans": plans,
        "credit_price": "0.01",
        "ai_features": {"smart_reply": {"credits": 2}},
    }
    assert api.platform.post("/v1/catalog", {"catalog": catalog}).status_code == 201


def test_credits_top_up_and_spend_per_feature_crd_1(api: ApiWorld) -> None:
    """CRD-1, CRD-4: the balance, a top-up (a bad count refused next to the field), and
    the spend per feature."""
    with_credits(api)
    subscribe(api, api.member("acme", "alice"), plan="basic")
    alice = tab(api, "alice")
    text = text_of(alice.get("/portal/"))
    assert "AI credits" in text and "Balance 0 credits" in text and "0.01 USD per credit" in text
    refused = post(alice, "/portal/credits/top_up", credits="none")
    assert refused.status_code == 400 and "a whole number greater than zero" in refused.text
    topped = text_of(followed(alice, post(alice, "/portal/credits/top_up", credits="500")))
    assert "Credits added successfully." in topped and "Balance 500 credits" in topped
    used = api.platform.post(
        "/v1/credits/consume",
        {"organization": "acme", "feature": "smart_reply", "id": "u1", "quantity": 3},
    )
    assert used.status_code == 200, used.text
    assert "Smart reply 3 6" in text_of(alice.get("/portal/"))


def test_static_assets_are_served(api: ApiWorld) -> None:
    """htmx is vendored (no CDN): served from /portal/static."""
    client = TestClient(api.platform.http.app)
    htmx = client.get("/portal/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx 2.0.11" in htmx.text[:200]
    assert client.get("/portal/static/portal.css").status_code == 200
