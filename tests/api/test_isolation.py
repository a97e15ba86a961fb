"""Who may touch which billing object (ACL-1, ACL-3), for every billing endpoint.

One world per test, with a table of requests each: a member of another organization gets
404 for every object of acme (never a hint that it exists), a plain member of acme gets
403 for every billing action, and afterwards acme is exactly as it was.
"""

from __future__ import annotations

from typing import Any

from tests.api.billing import GLOBEX, make_organization, subscribe
from tests.api.conftest import ApiWorld, Client

Request = tuple[str, str, dict[str, Any] | None]

OBJECTS: tuple[Request, ...] = (
    ("GET", "/v1/agents/{agent}", None),
    ("POST", "/v1/agents/{agent}/archive", None),
    ("GET", "/v1/phone_numbers/{number}", None),
    ("POST", "/v1/phone_numbers/{number}/release", None),
    ("GET", "/v1/subscriptions/{subscription}", None),
    ("POST", "/v1/subscriptions/{subscription}/change", {"plan": "pro"}),
    ("POST", "/v1/subscriptions/{subscription}/cancel_scheduled_change", None),
    ("POST", "/v1/subscriptions/{subscription}/cancel", None),
    ("POST", "/v1/subscriptions/{subscription}/resume", None),
    ("GET", "/v1/invoices/{invoice}", None),
    ("POST", "/v1/invoices/{invoice}/pay", None),
    ("GET", "/v1/agents?organization=acme", None),
    ("GET", "/v1/phone_numbers?organization=acme", None),
    ("GET", "/v1/subscriptions?organization=acme", None),
    ("GET", "/v1/payment_methods?organization=acme", None),
    ("GET", "/v1/invoices?organization=acme", None),
    ("GET", "/v1/notices?organization=acme", None),
    ("POST", "/v1/agents", {"organization": "acme", "code": "intruder"}),
    ("POST", "/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0199"}),
    ("POST", "/v1/subscriptions", {"organization": "acme", "plan": "pro"}),
    ("POST", "/v1/payment_methods", {"organization": "acme", "card": "card_ok"}),
    ("POST", "/v1/demo_requests", {"organization": "acme", "plan": "enterprise"}),
)
"""Every billing endpoint aimed at acme or one of acme's objects."""

LISTS = (
    "/v1/agents",
    "/v1/phone_numbers",
    "/v1/subscriptions",
    "/v1/payment_methods",
    "/v1/invoices",
    "/v1/notices",
)
PLATFORM_ONLY: tuple[Request, ...] = (
    ("POST", "/v1/subscriptions/{subscription}/approve_change", None),
    ("GET", "/v1/demo_requests", None),
)


def call(client: Client, request: Request, ids: dict[str, int]) -> Any:
    method, path, body = request
    path = path.format(**ids)
    return client.get(path) if method == "GET" else client.post(path, body)


def acme_and_globex(api: ApiWorld) -> dict[str, int]:
    """Both subscribed to Basic; acme with an agent, a phone number and a card."""
    make_organization(api)
    make_organization(api, GLOBEX)
    alice = api.member("acme", "alice")
    subscription = subscribe(api, alice)
    subscribe(api, api.member("globex", "gina"), "globex")
    agent = alice.post("/v1/agents", {"organization": "acme", "code": "bot"}).json()
    number = alice.post("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0100"})
    (invoice,) = alice.get("/v1/invoices").json()["data"]
    return {
        "agent": agent["id"],
        "number": number.json()["id"],
        "subscription": subscription["id"],
        "invoice": invoice["id"],
    }


def snapshot(api: ApiWorld) -> list[Any]:
    """Everything of acme that the endpoints could change."""
    platform = api.platform
    return [platform.get(path, organization="acme").json()["data"] for path in LISTS]


def test_another_organizations_objects_are_not_found(billing_api: ApiWorld) -> None:
    """ACL-3: for globex's owner every object of acme is 404 (as if it did not exist),
    with no data of acme; globex's own lists show only globex; acme is unchanged."""
    ids = acme_and_globex(billing_api)
    before = snapshot(billing_api)
    gina = billing_api.member("globex", "gina")
    for request in OBJECTS:
        response = call(gina, request, ids)
        assert response.status_code == 404, (request, response.text)
        assert response.json()["code"] == "not_found", request
        assert "acme" not in response.json()["detail"] and "bot" not in response.text, request
    for path in LISTS:
        items = gina.get(path).json()["data"]
        assert {item["organization"] for item in items} <= {"globex"}, path
    assert snapshot(billing_api) == before


def test_a_plain_member_may_not_manage_billing(billing_api: ApiWorld) -> None:
    """ACL-1: a member without billing rights gets 403 for every billing action and
    list, also on their own organization; nothing changes."""
    ids = acme_and_globex(billing_api)
    before = snapshot(billing_api)
    carol = billing_api.member("acme", "carol")
    for request in (*OBJECTS, *PLATFORM_ONLY, *(("GET", path, None) for path in LISTS)):
        response = call(carol, request, ids)
        assert response.status_code == 403, (request, response.text)
        assert response.json()["code"] == "forbidden", request
    assert snapshot(billing_api) == before


def test_operator_actions_need_the_platform_key(billing_api: ApiWorld) -> None:
    """SUB-4, CAT-2: approving a held change and listing demo requests are the
    platform's; even acme's owner gets 403."""
    ids = acme_and_globex(billing_api)
    alice = billing_api.member("acme", "alice")
    for request in PLATFORM_ONLY:
        response = call(alice, request, ids)
        assert response.status_code == 403, (request, response.text)


def test_a_billing_admin_may_do_what_billing_needs(billing_api: ApiWorld) -> None:
    """ACL-1: the billing admin reads and manages acme's billing like the owner."""
    ids = acme_and_globex(billing_api)
    bob = billing_api.member("acme", "bob")
    reads = [request for request in OBJECTS if request[0] == "GET"]
    for request in reads:
        response = call(bob, request, ids)
        assert response.status_code == 200, (request, response.text)
    for action in ("cancel", "resume"):
        request = ("POST", f"/v1/subscriptions/{{subscription}}/{action}", None)
        assert call(bob, request, ids).status_code == 200, action


def test_the_platform_sees_every_organization(billing_api: ApiWorld) -> None:
    acme_and_globex(billing_api)
    subscriptions = billing_api.platform.get("/v1/subscriptions").json()["data"]
    assert [s["organization"] for s in subscriptions] == ["acme", "globex"]
    notices = billing_api.platform.get("/v1/notices").json()["data"]
    assert {n["organization"] for n in notices} == {"acme", "globex"}


def test_a_parents_members_see_their_sub_accounts(billing_api: ApiWorld) -> None:
    """SUB-2, ACL-3: a sub-account shares acme's limits; acme's owner sees the agents of
    its sub-account; the sub-account's owner sees its own but neither acme's agents nor
    acme's subscription."""
    ids = acme_and_globex(billing_api)
    made = billing_api.platform.post("/v1/organizations", {"code": "acme-eu", "parent": "acme"})
    assert made.status_code == 201
    alice = billing_api.member("acme", "alice")
    eu_bot = {"organization": "acme-eu", "code": "eu-bot"}
    assert alice.post("/v1/agents", eu_bot).json()["code"] == "capacity_full"
    alice.post("/v1/agents/{agent}/archive".format(**ids))
    made_agent = alice.post("/v1/agents", eu_bot)
    assert made_agent.status_code == 201, made_agent.text
    assert [a["organization"] for a in alice.get("/v1/agents").json()["data"]] == [
        "acme",
        "acme-eu",
    ]
    eu_owner = billing_api.member("acme-eu", "owner")
    assert [a["code"] for a in eu_owner.get("/v1/agents").json()["data"]] == ["eu-bot"]
    assert eu_owner.get("/v1/agents/{agent}".format(**ids)).status_code == 404
    assert eu_owner.get("/v1/subscriptions/{subscription}".format(**ids)).status_code == 404
    assert eu_owner.get("/v1/subscriptions").json()["data"] == []
