"""Agents and phone numbers through the API: add within the plan's capacity (LIM-1,
LIM-2 capacity_full), archive and release free a slot, bad inputs change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tabkeeper.db.tables import Agent, PhoneNumber
from tests.api.billing import make_organization, problem, subscribe
from tests.api.conftest import ApiWorld, Client


@pytest.fixture
def bob(billing_api: ApiWorld) -> Client:
    """acme's billing admin; acme is on Basic: 1 agent, 1 phone number."""
    make_organization(billing_api)
    subscribe(billing_api, billing_api.member("acme", "alice"))
    return billing_api.member("acme", "bob")


def test_agents_fill_the_plans_slots(bob: Client) -> None:
    """LIM-2: a second agent on a one-agent plan is refused with capacity_full and the
    check's message; archiving the first frees its slot (ACL-1: a billing admin may)."""
    made = bob.post("/v1/agents", {"organization": "acme", "code": "support-bot"})
    assert made.status_code == 201, made.text
    agent = made.json()
    assert (agent["organization"], agent["code"], agent["status"]) == (
        "acme",
        "support-bot",
        "active",
    )
    full = problem(
        bob.post("/v1/agents", {"organization": "acme", "code": "sales-bot"}), 409, "capacity_full"
    )
    assert "agent" in full["detail"].lower()
    assert bob.get(f"/v1/agents/{agent['id']}").json() == agent
    archived = bob.post(f"/v1/agents/{agent['id']}/archive")
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived" and archived.json()["archived_at"]
    problem(bob.post(f"/v1/agents/{agent['id']}/archive"), 409, "unknown_agent")
    again = bob.post("/v1/agents", {"organization": "acme", "code": "sales-bot"})
    assert again.status_code == 201, again.text
    listed = bob.get("/v1/agents", organization="acme").json()["data"]
    assert [(a["code"], a["status"]) for a in listed] == [
        ("support-bot", "archived"),
        ("sales-bot", "active"),
    ]
    assert bob.get("/v1/agents").json()["data"] == listed


def test_an_archived_agent_comes_back(bob: Client) -> None:
    made = bob.post("/v1/agents", {"organization": "acme", "code": "bot"}).json()
    bob.post(f"/v1/agents/{made['id']}/archive")
    back = bob.post("/v1/agents", {"organization": "acme", "code": "bot"})
    assert back.status_code == 201 and back.json()["id"] == made["id"]
    problem(bob.post("/v1/agents", {"organization": "acme", "code": "bot"}), 409, "agent_exists")


def test_phone_numbers_fill_the_plans_slots(bob: Client) -> None:
    """LIM-2: a second number on a one-number plan is refused; releasing frees it."""
    added = bob.post("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0100"})
    assert added.status_code == 201, added.text
    number = added.json()
    assert (number["number"], number["status"]) == ("+1 555 0100", "active")
    problem(
        bob.post("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0101"}),
        409,
        "capacity_full",
    )
    problem(
        bob.post("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0100"}),
        409,
        "phone_number_exists",
    )
    assert bob.get(f"/v1/phone_numbers/{number['id']}").json() == number
    released = bob.post(f"/v1/phone_numbers/{number['id']}/release")
    assert released.status_code == 200 and released.json()["status"] == "released"
    problem(bob.post(f"/v1/phone_numbers/{number['id']}/release"), 409, "unknown_phone_number")
    assert (
        bob.post("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0101"}).status_code
        == 201
    )
    listed = bob.get("/v1/phone_numbers", organization="acme").json()["data"]
    assert [(n["number"], n["status"]) for n in listed] == [
        ("+1 555 0100", "released"),
        ("+1 555 0101", "active"),
    ]


def test_without_a_subscription_nothing_can_be_added(billing_api: ApiWorld) -> None:
    """LIM-2: with no subscription the check refuses (no_subscription)."""
    make_organization(billing_api)
    problem(
        billing_api.platform.post("/v1/agents", {"organization": "acme", "code": "bot"}),
        409,
        "no_subscription",
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/agents", {"organization": "acme", "code": "Bad Code"}),
        ("/v1/agents", {"organization": "acme", "code": "bot", "channel": "voice"}),
        ("/v1/agents", {"code": "bot"}),
        ("/v1/phone_numbers", {"organization": "acme", "number": "call me"}),
        ("/v1/phone_numbers", {"organization": "acme", "number": "12"}),
        ("/v1/phone_numbers", {"organization": "acme", "number": "+1 555 0100", "x": 1}),
    ],
)
def test_bad_resources_are_refused(
    billing_api: ApiWorld, bob: Client, path: str, body: dict[str, Any]
) -> None:
    """Invalid codes and numbers, unknown fields, missing fields: 422, nothing made."""
    problem(bob.post(path, body), 422, "invalid_request")
    assert billing_api.world.count(Agent) == billing_api.world.count(PhoneNumber) == 0


def test_lists_page(bob: Client, billing_api: ApiWorld) -> None:
    """Lists page with cursors in id order."""
    for i in range(3):
        made = bob.post("/v1/agents", {"organization": "acme", "code": f"bot-{i}"}).json()
        bob.post(f"/v1/agents/{made['id']}/archive")
    first = bob.get("/v1/agents", limit=2).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = bob.get("/v1/agents", limit=2, cursor=first["next_cursor"]).json()
    assert [a["code"] for a in first["data"] + rest["data"]] == ["bot-0", "bot-1", "bot-2"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
