"""Capacity through the API while a reduction waits (SUB-13), members counted on every path
(SUB-13, ADD-4), and the numbers of a session start after its reservation (LIM-1, LIM-3).

Each refusal is a 409 problem with nothing changed. Bad inputs tried: a second agent and
a second phone number while a downgrade to a one-agent, one-number plan waits; a second
agent while a slot removal waits; an organization created with more members than the trial
plan's seats; a sub-account whose members would pass the shared seats.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.billing import make_billing_world, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld, Client

TRIAL = {"trial": {"days": 14, "sessions": 50, "plan": "trial"}}


@pytest.fixture
def alice(billing_api: ApiWorld) -> Client:
    """acme's owner; acme (alice, bob, carol: 2 team seats) on Pro: 3 agents, 2 numbers."""
    make_organization(billing_api)
    client = billing_api.member("acme", "alice")
    subscribe(billing_api, client, plan="pro")
    return client


def _agents(client: Client) -> list[tuple[str, str]]:
    listed = client.get("/v1/agents", organization="acme").json()["data"]
    return [(a["code"], a["status"]) for a in listed]


def _numbers(client: Client) -> list[str]:
    listed = client.get("/v1/phone_numbers", organization="acme").json()["data"]
    return [n["number"] for n in listed if n["status"] == "active"]


def _check(client: Client, action: str) -> dict[str, Any]:
    answer = client.post("/v1/check", {"organization": "acme", "action": action})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_sub13_a_waiting_downgrade_refuses_agents_and_numbers_beyond_it(alice: Client) -> None:
    """SUB-13: with a change to Basic (1 agent, 5 seats, 1 number) scheduled for Feb 1, the
    first agent and number fit and are added; a second of each is refused with
    scheduled_change_limit naming the change, and nothing is added; the check says the
    same; members fill Basic's seats, one more is refused; canceling the change makes
    room again (Pro: 3 agents, 10 seats, 2 numbers)."""
    subscription = alice.get("/v1/subscriptions", organization="acme").json()["data"][0]
    changed = alice.post(
        f"/v1/subscriptions/{subscription['id']}/change", {"plan": "basic", "when": "period_end"}
    )
    assert changed.status_code == 200, changed.text
    assert alice.post("/v1/agents", {"organization": "acme", "code": "a1"}).status_code == 201
    number = {"organization": "acme", "number": "+1 555 0100"}
    assert alice.post("/v1/phone_numbers", number).status_code == 201
    refused = problem(
        alice.post("/v1/agents", {"organization": "acme", "code": "a2"}),
        409,
        "scheduled_change_limit",
    )
    assert refused["detail"] == (
        "A change to Basic on 2026-02-01 leaves room for 1 agent; cancel the scheduled change "
        "to add more."
    )
    assert _agents(alice) == [("a1", "active")]
    second = {"organization": "acme", "number": "+1 555 0101"}
    refused = problem(alice.post("/v1/phone_numbers", second), 409, "scheduled_change_limit")
    assert "leaves room for 1 phone number" in refused["detail"]
    assert _numbers(alice) == ["+1 555 0100"]
    decision = _check(alice, "add_agent")
    assert (decision["allowed"], decision["reason"]) == (False, "scheduled_change_limit")
    assert decision["numbers"]["in_use"] == 1
    assert decision["numbers"]["limit"] == 3
    assert decision["numbers"]["scheduled_limit"] == 1
    assert decision["numbers"]["scheduled_at"] == "2026-02-01T00:00:00Z"
    seats = _check(alice, "add_seat")  # Basic has 5 seats, 2 in use: room left
    assert seats["allowed"] is True
    assert seats["numbers"]["scheduled_limit"] == 5
    for member in ("dan", "eve", "fay"):  # Basic's 5 seats filled; Pro has 10
        added = alice.post("/v1/members", {"organization": "acme", "code": member})
        assert added.status_code == 201, added.text
    refused = problem(
        alice.post("/v1/members", {"organization": "acme", "code": "gus"}),
        409,
        "scheduled_change_limit",
    )
    assert "leaves room for 5 seats" in refused["detail"]
    members = alice.get("/v1/members", organization="acme").json()["data"]
    assert "gus" not in [m["code"] for m in members]
    canceled = alice.post(f"/v1/subscriptions/{subscription['id']}/cancel_scheduled_change")
    assert canceled.status_code == 200, canceled.text
    assert alice.post("/v1/agents", {"organization": "acme", "code": "a2"}).status_code == 201


def test_sub13_a_waiting_slot_removal_refuses_agents_beyond_it(billing_api: ApiWorld) -> None:
    """SUB-13, ADD-3: Basic (1 agent) with 2 Extra agent slots (3 agents); 1 slot removed
    from Feb 1 leaves 2: a2 is added, a3 is refused (scheduled_change_limit naming the
    removal) though 3 slots' worth are in force until then."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice, plan="basic")
    added = alice.post("/v1/addons/add", {"organization": "acme", "addon": "extra_agent",
                                          "quantity": 2})  # fmt: skip
    assert added.status_code == 200, added.text
    removed = alice.post("/v1/addons/remove", {"organization": "acme", "addon": "extra_agent",
                                               "quantity": 1})  # fmt: skip
    assert removed.status_code == 200, removed.text
    for code in ("a1", "a2"):
        assert alice.post("/v1/agents", {"organization": "acme", "code": code}).status_code == 201
    refused = problem(
        alice.post("/v1/agents", {"organization": "acme", "code": "a3"}),
        409,
        "scheduled_change_limit",
    )
    assert refused["detail"] == (
        "The removal of 1 Extra agent slot on 2026-02-01 leaves room for 2 agents; buy more "
        "slots to add more."
    )
    assert _agents(alice) == [("a1", "active"), ("a2", "active")]


def test_sub13_members_of_a_new_organization_count_against_seats(engine: Any) -> None:
    """SUB-13, ADD-4: the trial plan has 5 team seats; an organization created with its
    owner and 6 more members is refused (capacity_full) and nothing is created; with 5
    more it is created. A sub-account's first member is its holder; members beyond it
    take the shared seats: one more is refused, nothing created."""
    api = make_billing_world(engine, TRIAL)
    members = [{"code": "owner", "role": "owner"}] + [
        {"code": f"m{i}", "role": "member"} for i in range(6)
    ]
    refused = problem(
        api.platform.post("/v1/organizations", {"code": "acme", "members": members}),
        409,
        "capacity_full",
    )
    assert refused["detail"] == (
        "The plan allows 5 team seats besides the owner and 6 were given. Buy more seats."
    )
    assert api.platform.get("/v1/organizations/acme").status_code == 404
    assert api.platform.get("/v1/organizations").json()["data"] == []
    made = api.platform.post("/v1/organizations", {"code": "acme", "members": members[:6]})
    assert made.status_code == 201, made.text
    sub = {"code": "acme-eu", "parent": "acme",
           "members": [{"code": "eu-owner", "role": "owner"}, {"code": "eu1"}]}  # fmt: skip
    problem(api.platform.post("/v1/organizations", sub), 409, "capacity_full")
    assert [o["code"] for o in api.platform.get("/v1/organizations").json()["data"]] == ["acme"]
    sub["members"] = sub["members"][:1]
    assert api.platform.post("/v1/organizations", sub).status_code == 201
    problem(
        api.platform.post("/v1/members", {"organization": "acme-eu", "code": "eu1"}),
        409,
        "capacity_full",
    )


def test_lim3_a_start_answers_with_the_numbers_after_its_reservation(
    billing_api: ApiWorld, alice: Client
) -> None:
    """LIM-1, LIM-3 (issue 12 item 8): an admitted start answers used and remaining with
    itself counted; a start in an open window counts nothing and says so."""
    platform = billing_api.platform
    subscription = alice.get("/v1/subscriptions", organization="acme").json()["data"][0]
    path = f"/v1/subscriptions/{subscription['id']}/session_limit"
    assert alice.put(path, {"limit": 2}).status_code == 200
    start = {"organization": "acme", "agent": "bot", "conversation": "k1"}
    first = platform.post("/v1/sessions/start", start).json()
    assert first["numbers"] == {"used": 1, "limit": 2, "remaining": 1}
    again = platform.post("/v1/sessions/start", start).json()
    assert again["numbers"] == {"used": 1, "limit": 2, "remaining": 1}
    second = platform.post("/v1/sessions/start", {**start, "conversation": "k2"}).json()
    assert second["numbers"] == {"used": 2, "limit": 2, "remaining": 0}


def _slots(client: Client, path: str, quantity: int) -> Any:
    return client.post(path, {"organization": "acme", "addon": "extra_agent",
                              "quantity": quantity})  # fmt: skip


def test_sub13_a_reduction_is_checked_against_the_other_waiting_one(alice: Client) -> None:
    """SUB-13, SUB-6, ADD-3: Pro (3 agents) with 2 Extra agent slots, 3 agents in use.
    Bad inputs tried: after 1 slot is removed from Feb 1, a change to Basic at the period's
    end is refused (Basic with the 1 slot left allows 2 agents, not the 2 slots of today);
    with a slot bought back and the change to Basic waiting (accepted: 2 slots from Feb
    1), removing those 2 slots is refused (Basic alone allows 1 agent; Pro alone would
    allow 3). Each refusal changes nothing."""
    assert _slots(alice, "/v1/addons/add", 2).status_code == 200
    for code in ("a1", "a2", "a3"):
        assert alice.post("/v1/agents", {"organization": "acme", "code": code}).status_code == 201
    subscription = alice.get("/v1/subscriptions", organization="acme").json()["data"][0]
    change = f"/v1/subscriptions/{subscription['id']}/change"
    assert _slots(alice, "/v1/addons/remove", 1).status_code == 200
    refused = problem(
        alice.post(change, {"plan": "basic", "when": "period_end"}), 409, "capacity_in_use"
    )
    assert refused["detail"] == "Basic allows 2 agents; archive or delete 1 agent first."
    before = alice.get("/v1/subscriptions", organization="acme").json()["data"][0]
    assert before["upcoming"] is None
    assert _slots(alice, "/v1/addons/add", 1).status_code == 200  # 3 slots, 2 from Feb 1
    assert alice.post(change, {"plan": "basic", "when": "period_end"}).status_code == 200
    refused = problem(_slots(alice, "/v1/addons/remove", 2), 409, "capacity_in_use")
    assert refused["detail"] == (
        "From the next billing date Basic and its remaining slots allow 1 agent; archive or "
        "delete 2 agents first."
    )
    panel = alice.get("/v1/addons", organization="acme").json()
    assert [(a["quantity"], a["quantity_next_period"]) for a in panel["active"]] == [(3, 2)]
