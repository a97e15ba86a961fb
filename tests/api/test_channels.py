"""Channels through the API (CAT-7, SUB-6, LIM-1): connect within the plan's channels and
`limits.channels`, disconnect, list, the check's `connect_channel`; each refusal is a
clear problem and changes nothing.

Bad inputs tried: a channel no plan lists (`unknown_channel`), an empty name, a name 65
characters long, one in upper case with a space (`invalid_channel`), a body 1001
characters long (422), another organization's channels (404 for connect, disconnect and
list), a disconnect of a channel not connected (`channel_not_connected`), a second
connect of a connected channel (`channel_connected`), a plain member (403)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.billing import CATALOG as BILLING_CATALOG
from tests.api.billing import GLOBEX, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import every_row

CATALOG: dict[str, Any] = {
    **BILLING_CATALOG,
    "plans": {
        **BILLING_CATALOG["plans"],
        "basic": {**BILLING_CATALOG["plans"]["basic"], "channels": ["webchat"],
                  "limits": {**BILLING_CATALOG["plans"]["basic"]["limits"], "channels": 1}},
        "pro": {**BILLING_CATALOG["plans"]["pro"], "channels": ["webchat", "whatsapp", "slack"],
                "limits": {**BILLING_CATALOG["plans"]["pro"]["limits"], "channels": 2}},
    },
}  # fmt: skip


@pytest.fixture
def bob(billing_api: ApiWorld) -> Client:
    """acme's billing admin; acme is on Basic: webchat only, 1 at once; globex on Pro."""
    imported = billing_api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(billing_api)
    subscribe(billing_api, billing_api.member("acme", "alice"))
    make_organization(billing_api, GLOBEX)
    subscribe(billing_api, billing_api.member("globex", "gina"), "globex", "pro")
    return billing_api.member("acme", "bob")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine)


def _connect(client: Client, channel: Any, organization: str = "acme") -> Any:
    return client.post("/v1/channels", {"organization": organization, "channel": channel})


def test_cat7_connect_list_and_disconnect(bob: Client) -> None:
    """CAT-7: webchat connects on Basic; the list shows it with the plan's channels and
    limit; a disconnect frees its place and it connects again."""
    made = _connect(bob, "webchat")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["organization"], body["channel"], body["status"]) == ("acme", "webchat", "active")
    listed = bob.get("/v1/channels", organization="acme").json()
    assert [c["channel"] for c in listed["connected"]] == ["webchat"]
    assert (listed["allowed"], listed["in_use"], listed["limit"]) == (["webchat"], 1, 1)
    gone = bob.delete("/v1/channels/webchat?organization=acme")
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "disconnected" and gone.json()["disconnected_at"]
    assert bob.get("/v1/channels", organization="acme").json()["connected"] == []
    assert _connect(bob, "webchat").status_code == 201


def test_cat7_refusals_name_a_plan_and_change_nothing(billing_api: ApiWorld, bob: Client) -> None:
    """CAT-7: whatsapp on Basic is refused naming Pro (the lowest plan with it); on Pro a
    third channel is refused at the limit of 2; the check answers the same."""
    assert _connect(bob, "webchat").status_code == 201
    before = _state(billing_api)
    refused = problem(_connect(bob, "whatsapp"), 409, "channel_not_in_plan")
    assert "Upgrade to Pro" in refused["detail"]
    problem(_connect(bob, "webchat"), 409, "channel_connected")
    assert _state(billing_api) == before
    gina = billing_api.member("globex", "gina")
    assert _connect(gina, "webchat", "globex").status_code == 201
    assert _connect(gina, "whatsapp", "globex").status_code == 201
    before = _state(billing_api)
    full = problem(_connect(gina, "slack", "globex"), 409, "channel_limit_reached")
    assert "allows 2 connected channels" in full["detail"]
    check = gina.post(
        "/v1/check", {"organization": "globex", "action": "connect_channel", "channel": "slack"}
    )
    assert check.status_code == 200, check.text
    answer = check.json()
    assert (answer["allowed"], answer["reason"]) == (False, "channel_limit_reached")
    assert (answer["numbers"]["in_use"], answer["numbers"]["limit"]) == (2, 2)
    assert _state(billing_api) == before


@pytest.mark.parametrize(
    ("channel", "status", "code"),
    [
        ("teams", 400, "unknown_channel"),
        ("", 400, "invalid_channel"),
        ("w" * 65, 400, "invalid_channel"),
        ("Web Chat", 400, "invalid_channel"),
        ("w" * 1001, 422, "invalid_request"),
        (7, 422, "invalid_request"),
    ],
)
def test_cat7_bad_channel_names_change_nothing(
    billing_api: ApiWorld, bob: Client, channel: Any, status: int, code: str
) -> None:
    before = _state(billing_api)
    problem(_connect(bob, channel), status, code)
    assert _state(billing_api) == before


def test_cat7_other_organizations_and_members_change_nothing(
    billing_api: ApiWorld, bob: Client
) -> None:
    """ACL-1, ACL-3: another organization's channels are a 404; a plain member a 403; a
    disconnect of a channel not connected a 409; nothing changes."""
    gina = billing_api.member("globex", "gina")
    assert _connect(gina, "webchat", "globex").status_code == 201
    before = _state(billing_api)
    problem(_connect(bob, "webchat", "globex"), 404, "not_found")
    problem(bob.delete("/v1/channels/webchat?organization=globex"), 404, "not_found")
    problem(bob.get("/v1/channels", organization="globex"), 404, "not_found")
    problem(bob.delete("/v1/channels/webchat?organization=acme"), 409, "channel_not_connected")
    problem(bob.delete("/v1/channels/nothing?organization=acme"), 409, "channel_not_connected")
    carol = billing_api.member("acme", "carol")
    problem(_connect(carol, "webchat"), 403, "forbidden")
    assert _state(billing_api) == before


def test_cat7_check_needs_a_channel_for_connect_channel(bob: Client) -> None:
    """CAT-7: connect_channel without a channel, or a channel with another action, is 400."""
    no_channel = bob.post("/v1/check", {"organization": "acme", "action": "connect_channel"})
    problem(no_channel, 400, "invalid_input")
    stray = bob.post(
        "/v1/check", {"organization": "acme", "action": "add_agent", "channel": "webchat"}
    )
    problem(stray, 400, "invalid_input")
    allowed = bob.post(
        "/v1/check", {"organization": "acme", "action": "connect_channel", "channel": "webchat"}
    ).json()
    assert (allowed["allowed"], allowed["numbers"]["channel"]) == (True, "webchat")
