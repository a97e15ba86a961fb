"""The billing tab's plan cards show each plan's channels and how many may be connected
(CAT-7, PRT-1), through the ASGI app without a browser."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine

from tests.api.billing import ACME, make_billing_world, make_organization
from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.portal.test_pages import tab, text_of

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "plans": {
        **BILLING_CATALOG["plans"],
        "pro": {**BILLING_CATALOG["plans"]["pro"], "channels": ["webchat", "whatsapp"],
                "limits": {**BILLING_CATALOG["plans"]["pro"]["limits"], "channels": 1}},
    },
}  # fmt: skip


def test_cat7_plan_cards_list_their_channels(engine: Engine) -> None:
    """CAT-7: Pro's card names webchat and whatsapp and its limit of 1 channel; Basic,
    which lists none, has no channel line."""
    api = make_billing_world(engine)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    page = tab(api, "alice").get("/portal/")
    assert page.status_code == 200
    pro = page.text.split('id="plan-pro"', 1)[1].split("</li>\n", 1)[0]
    pro_text = text_of(SimpleNamespace(text=pro))
    assert "Channels: webchat, whatsapp" in pro_text
    assert "1 channel" in pro_text
    basic = page.text.split('id="plan-basic"', 1)[1].split('id="plan-pro"', 1)[0]
    assert "Channels:" not in basic
