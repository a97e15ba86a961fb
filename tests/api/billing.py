"""Helpers of the billing API tests: organizations with each role, subscribing through
the hosted checkout page, and checking problem+json answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from tests.api.conftest import ApiWorld, Client, make_api_world
from tests.integration.conftest import CATALOG as WORLD_CATALOG

PLANS = WORLD_CATALOG["plans"]
CATALOG: dict[str, Any] = {
    "meters": WORLD_CATALOG["meters"],
    "plans": {
        "trial": {**PLANS["trial"], "limits": {"agents": 1, "seats": 5}},
        "basic": {**PLANS["basic"], "limits": {"agents": 1, "seats": 5, "phone_numbers": 1}},
        "pro": {**PLANS["pro"], "limits": {"agents": 3, "seats": 10, "phone_numbers": 2}},
        "enterprise": {"name": "Enterprise", "price": "0", "sales_led": True, "rank": 3},
    },
    "addons": {"extra_agent": {"name": "Extra agent", "price": "10.00", "adds": {"agents": 1}}},
}
"""The world's catalog with room for a team of three, a sales-led plan and an add-on."""


def make_billing_world(engine: Engine, settings: dict[str, Any] | None = None) -> ApiWorld:
    api = make_api_world(engine, settings)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    return api


ACME = {
    "code": "acme",
    "members": [
        {"code": "alice", "email": "alice@acme.test", "role": "owner"},
        {"code": "bob", "email": "bob@acme.test", "role": "billing_admin"},
        {"code": "carol", "role": "member"},
    ],
}
GLOBEX = {"code": "globex", "members": [{"code": "gina", "role": "owner"}]}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of `response`, which must have this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    # OPS-3: each answer's own request id, as in its header; left out of what is returned
    # so that two answers compare equal when all else is (ACL-3: no tell)
    assert body.pop("request_id") == response.headers["X-Request-Id"], body
    return body


def make_organization(api: ApiWorld, organization: dict[str, Any] = ACME) -> None:
    response = api.platform.post("/v1/organizations", organization)
    assert response.status_code == 201, response.text


def page_path(checkout: dict[str, Any]) -> str:
    """The path of the hosted checkout page of a checkout the API answered."""
    return urlsplit(checkout["url"]).path


def start_checkout(
    client: Client, organization: str = "acme", plan: str = "basic", **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/v1/subscriptions", {"organization": organization, "plan": plan, **extra}
    )
    assert response.status_code == 201, response.text
    checkout: dict[str, Any] = response.json()["checkout"]
    assert checkout["status"] == "open"
    return checkout


def pay(api: ApiWorld, checkout: dict[str, Any], card: str) -> Any:
    """Pay on the hosted checkout page, as a browser posts its form (no credentials)."""
    return api.platform.http.post(page_path(checkout), data={"card": card}, follow_redirects=False)


def subscribe(
    api: ApiWorld,
    client: Client,
    organization: str = "acme",
    plan: str = "basic",
    card: str = "card_ok",
) -> dict[str, Any]:
    """Subscribe through the checkout page; the subscription as the API shows it."""
    paid = pay(api, start_checkout(client, organization, plan), card)
    assert paid.status_code == 303, paid.text
    return the_subscription(client, organization)


def the_subscription(client: Client, organization: str = "acme") -> dict[str, Any]:
    listed = client.get("/v1/subscriptions", organization=organization)
    assert listed.status_code == 200, listed.text
    (only,) = listed.json()["data"]
    found: dict[str, Any] = only
    return found
