"""Coupons (INV-6) and billing details with taxes (INV-7) through the API, on both
databases: `POST /v1/subscriptions/{id}/discounts`, `GET/PUT
/v1/organizations/{code}/billing_details`; each refusal is a clear problem and changes
nothing (every row of every table compared before and after).

Bad inputs tried: an unknown coupon (404 `unknown_coupon`), an expired one
(`coupon_expired`), one whose only redemption is taken (`coupon_exhausted`), one for
another plan (`coupon_not_applicable`), a second coupon while one runs
(`coupon_already_applied`), a coupon code 65 characters long (422), a plain member (403),
another organization's subscription (404); billing details with country "XX", "Germany"
and "" (`invalid_country`), tax IDs "DE12345", "FR12345678901" for a German organization
and "!!" for an American one (`invalid_tax_id`), an empty legal name (`invalid_input`), an
unknown field and a number for the country (422), a plain member (403), another
organization (404)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.billing import GLOBEX, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import FEB_1, every_row

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "coupons": {
        "launch": {"name": "Launch", "percent_off": "20", "duration": {"periods": 3}},
        "pro_only": {"percent_off": "50", "applies_to": ["pro"]},
        "single": {"amount_off": "5.00", "max_redemptions": 1},
        "old": {"percent_off": "10", "redeem_by": "2025-01-01T00:00:00Z"},
    },
}
SETTINGS = {"taxes": {"rates": {"de_vat": {"name": "VAT", "percent": "19", "countries": ["DE"]}}}}
DETAILS = {
    "legal_name": "Acme Bots GmbH",
    "country": "DE",
    "address": "Hauptstr. 1\n10115 Berlin",
    "tax_id": "DE 123 456 789",
}


@pytest.fixture
def bob(billing_api: ApiWorld) -> Client:
    """acme's billing admin; acme on Basic (30.00), globex on Pro; taxes for DE."""
    imported = billing_api.platform.post("/v1/catalog", {"catalog": CATALOG, "settings": SETTINGS})
    assert imported.status_code == 201, imported.text
    make_organization(billing_api)
    subscribe(billing_api, billing_api.member("acme", "alice"))
    make_organization(billing_api, GLOBEX)
    subscribe(billing_api, billing_api.member("globex", "gina"), "globex", "pro")
    return billing_api.member("acme", "bob")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine)


def _subscription_id(client: Client, organization: str = "acme") -> int:
    (only,) = client.get("/v1/subscriptions", organization=organization).json()["data"]
    found: int = only["id"]
    return found


def _renewal_lines(api: ApiWorld, organization: str = "acme") -> list[tuple[str, int]]:
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    renewal = api.platform.get("/v1/invoices", organization=organization).json()["data"][-1]
    lines = api.platform.get(f"/v1/invoices/{renewal['id']}").json()["lines"]
    return [(line["kind"], line["amount_minor"]) for line in lines]


def test_inv6_apply_a_coupon_and_the_renewal_is_discounted(
    billing_api: ApiWorld, bob: Client
) -> None:
    """INV-6: a billing admin applies Launch (20%, 3 periods); the next invoice that
    starts a period carries its discount line: 3000 - 600."""
    sid = _subscription_id(bob)
    made = bob.post(f"/v1/subscriptions/{sid}/discounts", {"coupon": "launch"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert {k: body[k] for k in ("organization", "coupon", "name", "percent_off", "periods",
                                 "periods_used", "amount_off_minor")} == {
        "organization": "acme", "coupon": "launch", "name": "Launch", "percent_off": "20",
        "periods": 3, "periods_used": 0, "amount_off_minor": None,
    }  # fmt: skip
    assert _renewal_lines(billing_api) == [("subscription", 3000), ("discount", -600)]


def test_inv7_billing_details_put_get_and_taxed_renewal(billing_api: ApiWorld, bob: Client) -> None:
    """INV-7: the billing admin sets the details (the VAT number normalized); the next
    invoice carries VAT 19% of 3000 = 570."""
    assert bob.get("/v1/organizations/acme/billing_details").json() == {
        "organization": "acme", "legal_name": None, "address": None, "country": None,
        "tax_id": None,
    }  # fmt: skip
    put = bob.put("/v1/organizations/acme/billing_details", DETAILS)
    assert put.status_code == 200, put.text
    expected = {"organization": "acme", **DETAILS, "tax_id": "DE123456789"}
    assert put.json() == expected
    assert bob.get("/v1/organizations/acme/billing_details").json() == expected
    assert billing_api.platform.get("/v1/organizations/acme/billing_details").json() == expected
    assert _renewal_lines(billing_api) == [("subscription", 3000), ("tax", 570)]


@pytest.mark.parametrize(
    ("coupon", "status", "code"),
    [
        ("nope", 404, "unknown_coupon"),
        ("old", 409, "coupon_expired"),
        ("pro_only", 409, "coupon_not_applicable"),
    ],
)
def test_inv6_coupon_refusals_change_nothing(
    billing_api: ApiWorld, bob: Client, coupon: str, status: int, code: str
) -> None:
    sid = _subscription_id(bob)
    before = _state(billing_api)
    problem(bob.post(f"/v1/subscriptions/{sid}/discounts", {"coupon": coupon}), status, code)
    assert _state(billing_api) == before


def test_inv6_exhausted_and_already_applied(billing_api: ApiWorld, bob: Client) -> None:
    """The only redemption of `single` is globex's: acme is refused; acme's running
    Launch refuses a second coupon; a 65-character code is a 422; nothing changes."""
    gina = billing_api.member("globex", "gina")
    gid = _subscription_id(gina, "globex")
    assert gina.post(f"/v1/subscriptions/{gid}/discounts", {"coupon": "single"}).status_code == 201
    sid = _subscription_id(bob)
    before = _state(billing_api)
    path = f"/v1/subscriptions/{sid}/discounts"
    problem(bob.post(path, {"coupon": "single"}), 409, "coupon_exhausted")
    problem(bob.post(path, {"coupon": "x" * 65}), 422, "invalid_request")
    assert _state(billing_api) == before
    assert bob.post(path, {"coupon": "launch"}).status_code == 201
    before = _state(billing_api)
    problem(bob.post(path, {"coupon": "pro_only"}), 409, "coupon_already_applied")
    assert _state(billing_api) == before


def test_inv6_inv7_who_may(billing_api: ApiWorld, bob: Client) -> None:
    """ACL-1/ACL-3: a plain member 403; another organization's subscription or details
    404; the platform's key may do it all."""
    carol = billing_api.member("acme", "carol")
    sid = _subscription_id(bob)
    gid = _subscription_id(billing_api.member("globex", "gina"), "globex")
    before = _state(billing_api)
    problem(
        carol.post(f"/v1/subscriptions/{sid}/discounts", {"coupon": "launch"}), 403, "forbidden"
    )
    problem(carol.put("/v1/organizations/acme/billing_details", DETAILS), 403, "forbidden")
    problem(carol.get("/v1/organizations/acme/billing_details"), 403, "forbidden")
    problem(bob.post(f"/v1/subscriptions/{gid}/discounts", {"coupon": "launch"}), 404, "not_found")
    problem(bob.put("/v1/organizations/globex/billing_details", DETAILS), 404, "not_found")
    problem(bob.get("/v1/organizations/globex/billing_details"), 404, "not_found")
    assert _state(billing_api) == before
    platform = billing_api.platform
    assert (
        platform.post(f"/v1/subscriptions/{gid}/discounts", {"coupon": "launch"}).status_code == 201
    )
    assert platform.put("/v1/organizations/globex/billing_details", DETAILS).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"country": "XX"}, 400, "invalid_country"),
        ({"country": "Germany"}, 400, "invalid_country"),
        ({"country": ""}, 400, "invalid_country"),
        ({"tax_id": "DE12345"}, 400, "invalid_tax_id"),
        ({"tax_id": "FR12345678901"}, 400, "invalid_tax_id"),
        ({"country": "US", "tax_id": "!!"}, 400, "invalid_tax_id"),
        ({"legal_name": "  "}, 400, "invalid_input"),
        ({"vat": "DE123456789"}, 422, "invalid_request"),
        ({"country": 49}, 422, "invalid_request"),
    ],
)
def test_inv7_bad_billing_details_change_nothing(
    billing_api: ApiWorld, bob: Client, change: dict[str, Any], status: int, code: str
) -> None:
    assert bob.put("/v1/organizations/acme/billing_details", DETAILS).status_code == 200
    before = _state(billing_api)
    answer = bob.put("/v1/organizations/acme/billing_details", {**DETAILS, **change})
    problem(answer, status, code)
    assert _state(billing_api) == before
