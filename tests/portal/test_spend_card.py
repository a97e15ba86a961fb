"""The billing tab's AI spend card (LIM-6, CRD-5..7, PRT-1) through the ASGI app without a
browser: every action is a plain form post with the CSRF token (no JavaScript); refusals
answer the page again with the message and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.api.billing import ACME, make_billing_world, make_organization, subscribe
from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.conftest import ApiWorld
from tests.portal.test_pages import followed, post, tab, text_of

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "plans": {
        **BILLING_CATALOG["plans"],
        "basic": {**BILLING_CATALOG["plans"]["basic"], "features": ["smart_reply"]},
    },
    "ai_features": {"smart_reply": {"credits": 1}},
    "credit_price": "0.01",
}
"""The billing tab's catalog, selling AI credits at 0.01 (the AI spend card shows)."""


def spend_world(engine: Engine) -> ApiWorld:
    """acme on Basic with 100 credits (1.00) bought."""
    api = make_billing_world(engine)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    subscribe(api, api.member("acme", "alice"))
    bought = api.member("acme", "alice").post(
        "/v1/credits/top-up", {"organization": "acme", "credits": 100}
    )
    assert bought.status_code == 200, bought.text
    return api


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    return spend_world(engine)


def _card(page: Any) -> str:
    return text_of(page).split("AI spend", 1)[1].split("Plans", 1)[0]


def test_lim6_crd6_crd7_the_ai_spend_card_without_javascript(api: ApiWorld) -> None:
    """LIM-6, CRD-5..7: the card shows balance and held credits; a spend cap set by form
    shows its bar (1.00 of 2.00, 50%); auto top-up and the low-balance alert turn on and
    off by form; a hold shows as held credits."""
    client = tab(api, "alice")
    card = _card(client.get("/portal/"))
    assert "Balance 100 credits" in card and "Held for AI calls in progress 0 credits" in card
    assert "No spend cap" in card
    page = followed(client, post(client, "/portal/spend_cap", amount="2.00"))
    assert "Spend cap saved." in _card(page)
    assert 'progress max="100" value="50"' in page.text
    assert "1.00 USD of 2.00 USD spent this billing period (50%)" in _card(page)
    page = followed(client, post(client, "/portal/auto_top_up", threshold="50", credits="200"))
    assert "On: 200 credits are bought with your card when the balance falls below 50" in (
        _card(page)
    )
    page = followed(client, post(client, "/portal/low_balance", threshold="20"))
    assert "below 20 credits" in _card(page)
    held = api.platform.post(
        "/v1/credits/holds", {"organization": "acme", "feature": "smart_reply", "credits": 30}
    )
    assert held.status_code == 201, held.text
    card = _card(client.get("/portal/"))
    assert "Balance 70 credits" in card and "Held for AI calls in progress 30 credits" in card
    page = followed(client, post(client, "/portal/auto_top_up/off"))
    assert "Auto top-up turned off." in _card(page) and "Off." in _card(page)
    page = followed(client, post(client, "/portal/low_balance/off"))
    assert "Low-balance alert turned off." in _card(page)
    page = followed(client, post(client, "/portal/spend_cap/reset"))
    assert "Spend cap removed." in _card(page) and "No spend cap" in _card(page)


@pytest.mark.parametrize(
    ("who", "path", "form", "status", "words"),
    [
        ("alice", "/portal/spend_cap", {"amount": "0"}, 400, "more than 0"),
        ("alice", "/portal/spend_cap", {"amount": "abc"}, 400, "amount"),
        ("alice", "/portal/spend_cap", {"amount": ""}, 400, "Enter the spend cap"),
        ("alice", "/portal/auto_top_up", {"threshold": "0", "credits": "10"}, 400, "threshold"),
        ("alice", "/portal/auto_top_up", {"threshold": "5", "credits": "x"}, 400, "credits"),
        ("alice", "/portal/low_balance", {"threshold": "-1"}, 400, "low-balance"),
        ("bob", "/portal/spend_cap", {"amount": "5.00"}, 200, ""),
    ],
)  # fmt: skip
def test_lim6_crd6_bad_forms_change_nothing(
    api: ApiWorld, who: str, path: str, form: dict[str, str], status: int, words: str
) -> None:
    """Bad input answers the page again with the message (role=alert), nothing saved; a
    billing admin (bob) may set the cap too."""
    client = tab(api, who)
    before = _card(client.get("/portal/"))
    answer = post(client, path, **form)
    if status == 200:
        assert "Spend cap saved." in _card(followed(client, answer))
        return
    assert answer.status_code == status, answer.text
    assert 'role="alert"' in answer.text and words in text_of(answer)
    assert _card(client.get("/portal/")) == before
