"""Prepaid AI credits through the API (CRD-1..4, INV-1, LIM-2, ACL-1, ACL-3): balance and
grants, top-ups with their invoice, consumption by the platform, the ledger, spend per
feature and per agent, adjustments.

Bad requests tried, each answering problem+json and changing nothing: top-ups of 0, -5,
2.5, "10" and 10,000,001 credits (422), a price from a member (403), a malformed price
(400), a plain member topping up or reading (403), another organization's owner (404),
a member consuming (403), an unknown feature (400), 0 uses (422), a use the balance
cannot cover (409 `credits_exhausted`), a sub-account's top-up (409 `sub_account`), a
spend range that ends before it starts (400). Batches of consumptions: no uses, 1,001
uses, a bad use among good ones, one use instead of a list, no `uses` (422, nothing
taken), a member's batch (403); in a good batch, an unknown feature, an unknown
organization and a use the balance cannot cover are refused alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.api.billing import ACME, GLOBEX, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld, Client, make_api_world
from tests.integration.conftest import FEB_1, JAN_1, every_row
from tests.integration.test_credits import CATALOG


def on_basic(engine: Engine) -> ApiWorld:
    """acme (alice owner, bob billing admin, carol member) and globex, both on Basic."""
    api = make_api_world(engine)
    imported = api.platform.post("/v1/catalog", {"catalog": CATALOG})
    assert imported.status_code == 201, imported.text
    make_organization(api, ACME)
    make_organization(api, GLOBEX)
    subscribe(api, api.member("acme", "alice"))
    subscribe(api, api.member("globex", "gina"), "globex")
    return api


def with_credits(engine: Engine) -> ApiWorld:
    """`on_basic`, and acme has bought 100 credits (1.00)."""
    api = on_basic(engine)
    bought = api.member("acme", "alice").post(
        "/v1/credits/top-up", {"organization": "acme", "credits": 100}
    )
    assert bought.status_code == 200, bought.text
    return api


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme (alice owner, bob billing admin, carol member) and globex, both on Basic."""
    return on_basic(engine)


@pytest.fixture
def alice(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine, leave_out=("idempotent_requests",))


def _consume(api: ApiWorld, use_id: str, feature: str = "smart_reply", **more: Any) -> Any:
    body = {"organization": "acme", "feature": feature, "id": use_id, **more}
    return api.platform.post("/v1/credits/consume", body)


def test_top_up_then_consume_then_read(api: ApiWorld, alice: Client) -> None:
    """CRD-1, INV-1, CRD-3: alice buys 100 credits (1.00 on its own invoice with a
    `credits` line); the platform consumes them; the check pauses AI at 0 and a top-up
    resumes it; the balance, grants and ledger add up."""
    bought = alice.post("/v1/credits/top-up", {"organization": "acme", "credits": 100})
    assert bought.status_code == 200, bought.text
    body = bought.json()
    assert (body["message"], body["credits"], body["price_minor"], body["balance"]) == (
        "Credits added successfully.", 100, 100, 100,
    )  # fmt: skip
    line = body["invoice"]["lines"][0]
    assert (line["kind"], line["description"], line["quantity"]) == (
        "credits", "100 AI credits", "100",
    )  # fmt: skip
    assert body["invoice"]["total_minor"] == 100
    used = _consume(api, "u1", "kb_answer", quantity=50, agent="sales")
    assert used.status_code == 200, used.text
    assert (used.json()["credits"], used.json()["balance"], used.json()["duplicate"]) == (
        100, 0, False,
    )  # fmt: skip
    again = _consume(api, "u1", "kb_answer", quantity=50, agent="sales")
    assert (again.json()["balance"], again.json()["duplicate"]) == (0, True)
    check = {"organization": "acme", "action": "use_ai", "feature": "smart_reply"}
    refused = api.platform.post("/v1/check", check).json()
    assert (refused["allowed"], refused["reason"]) == (False, "credits_exhausted")
    session = {"organization": "acme", "action": "start_session"}
    assert api.platform.post("/v1/check", session).json()["allowed"]
    bob = api.member("acme", "bob")
    assert bob.post("/v1/credits/top-up", {"organization": "acme", "credits": 5}).status_code == 200
    assert api.platform.post("/v1/check", check).json()["allowed"]
    view = alice.get("/v1/credits", organization="acme").json()
    assert (view["balance"], view["purchased"], view["included"]) == (5, 5, 0)
    assert [(g["kind"], g["amount"], g["remaining"]) for g in view["grants"]] == [
        ("purchased", 5, 5)
    ]
    history = alice.get("/v1/credits/history", organization="acme", limit=2).json()
    assert [(e["kind"], e["amount"]) for e in history["data"]] == [("grant", 100), ("use", -100)]
    assert history["data"][1]["used_by"] == "acme" and history["has_more"]
    rest = alice.get("/v1/credits/history", organization="acme", cursor=history["next_cursor"])
    assert [(e["kind"], e["balance_after"]) for e in rest.json()["data"]] == [("grant", 5)]


def test_included_credits_and_spend_crd_4(api: ApiWorld, alice: Client) -> None:
    """CRD-2, CRD-4: on Plus, the period's 100 included credits show with their next
    grant; spend per feature and per agent for the current period."""
    changed = api.platform.post(
        "/v1/subscriptions/1/change", {"plan": "plus", "when": "immediately"}
    )
    assert changed.status_code in (200, 201), changed.text
    api.world.worker().run_until(api.world.clock.now())
    view = alice.get("/v1/credits", organization="acme").json()
    assert (view["balance"], view["included"], view["next_grant"]) == (100, 100, 100)
    assert view["next_grant_at"] == "2026-02-01T00:00:00Z"
    _consume(api, "u1", "kb_answer", quantity=3, agent="sales")
    _consume(api, "u2", quantity=4, agent="support")
    _consume(api, "u3")
    spend = alice.get("/v1/credits/spend", organization="acme").json()
    assert (spend["since"], spend["until"]) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert spend["total"] == {"uses": 8, "credits": 11}
    assert spend["features"] == {
        "kb_answer": {"uses": 3, "credits": 6},
        "smart_reply": {"uses": 5, "credits": 5},
    }
    assert spend["agents"] == {
        "": {"uses": 1, "credits": 1},
        "sales": {"uses": 3, "credits": 6},
        "support": {"uses": 4, "credits": 4},
    }
    ranged = alice.get(
        "/v1/credits/spend", organization="acme", since=FEB_1.isoformat(), until=JAN_1.isoformat()
    )
    problem(ranged, 400, "invalid_range")


def test_the_platform_sets_prices_and_grants(api: ApiWorld) -> None:
    """INV-1, CRD-2: the platform may sell at its own price, and give credits with a
    priority and an expiry, once per id."""
    bought = api.platform.post(
        "/v1/credits/top-up", {"organization": "acme", "credits": 400, "price": "5.00"}
    )
    assert bought.json()["price_minor"] == 500, bought.text
    grant = {"organization": "acme", "credits": 10, "id": "promo", "priority": 10,
             "expires_at": "2026-01-20T00:00:00Z"}  # fmt: skip
    first = api.platform.post("/v1/credits/grants", grant).json()
    again = api.platform.post("/v1/credits/grants", grant).json()
    assert (first["balance"], first["duplicate"], again["duplicate"]) == (410, False, True)
    assert first["grant"]["kind"] == "adjustment"
    assert _consume(api, "u1", quantity=12).json()["balance"] == 398
    view = api.platform.get("/v1/credits", organization="acme").json()
    assert [(g["kind"], g["remaining"]) for g in view["grants"]] == [("purchased", 398)]


@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("alice", "/v1/credits/top-up", {"credits": 0}, 422, "invalid_request"),
        ("alice", "/v1/credits/top-up", {"credits": -5}, 422, "invalid_request"),
        ("alice", "/v1/credits/top-up", {"credits": 2.5}, 422, "invalid_request"),
        ("alice", "/v1/credits/top-up", {"credits": "10"}, 422, "invalid_request"),
        ("alice", "/v1/credits/top-up", {"credits": 10_000_001}, 422, "invalid_request"),
        ("alice", "/v1/credits/top-up", {"credits": 10, "price": "1.00"}, 403, "forbidden"),
        ("platform", "/v1/credits/top-up", {"credits": 10, "price": "1.001"}, 400, "invalid_input"),
        ("carol", "/v1/credits/top-up", {"credits": 10}, 403, "forbidden"),
        ("gina", "/v1/credits/top-up", {"credits": 10}, 404, "not_found"),
        ("alice", "/v1/credits/consume", {"feature": "smart_reply", "id": "x"}, 403, "forbidden"),
        ("platform", "/v1/credits/consume", {"feature": "poetry", "id": "x"}, 400,
         "unknown_feature"),
        ("platform", "/v1/credits/consume", {"feature": "smart_reply", "id": "x", "quantity": 0},
         422, "invalid_request"),
        ("platform", "/v1/credits/consume", {"feature": "smart_reply", "id": "x"}, 409,
         "credits_exhausted"),
        ("bob", "/v1/credits/grants", {"credits": 5, "id": "g"}, 403, "forbidden"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(
    api: ApiWorld, who: str, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    """CRD-1, CRD-3, ACL-1, ACL-3: each bad request is problem+json; nothing changes."""
    caller = (
        api.platform
        if who == "platform"
        else api.member("globex" if who == "gina" else "acme", who)
    )
    before = _state(api)
    problem(caller.post(path, {"organization": "acme", **body}), status, code)
    assert _state(api) == before


@pytest.mark.parametrize("path", ["/v1/credits", "/v1/credits/history", "/v1/credits/spend"])
def test_reads_need_billing_rights_and_the_organization(api: ApiWorld, path: str) -> None:
    """ACL-1, ACL-3: a plain member 403; another organization's owner 404."""
    problem(api.member("acme", "carol").get(path, organization="acme"), 403, "forbidden")
    problem(api.member("globex", "gina").get(path, organization="acme"), 404, "not_found")


def test_a_sub_account_has_no_credits_of_its_own(api: ApiWorld) -> None:
    """SUB-2: credits are the organization's: a sub-account's top-up is 409; its agents
    consume the organization's credits."""
    eve = [{"code": "eve", "role": "owner"}]
    made = api.platform.post(
        "/v1/organizations", {"code": "acme-eu", "parent": "acme", "members": eve}
    )
    assert made.status_code == 201, made.text
    before = _state(api)
    top_up = {"organization": "acme-eu", "credits": 5}
    problem(api.platform.post("/v1/credits/top-up", top_up), 409, "sub_account")
    assert _state(api) == before
    api.platform.post("/v1/credits/top-up", {"organization": "acme", "credits": 5})
    used = api.platform.post(
        "/v1/credits/consume", {"organization": "acme-eu", "feature": "smart_reply", "id": "e1"}
    )
    assert used.json()["balance"] == 4, used.text


def _batch(api: ApiWorld, *uses: dict[str, Any], caller: Client | None = None) -> Any:
    return (caller or api.platform).post("/v1/credits/consume/batch", {"uses": list(uses)})


def test_a_batch_of_consumptions_crd_1(api: ApiWorld) -> None:
    """CRD-1, CRD-3: a batch of 5 with 10 credits: each use accepted or refused on its own
    (an unknown feature 400's code, another platform's or unknown organization
    `not_found`, too little left `credits_exhausted`), a repeated id answered as the
    first; the counts add up; the batch again takes nothing."""
    api.platform.post("/v1/credits/top-up", {"organization": "acme", "credits": 10})
    uses = (
        {"organization": "acme", "feature": "smart_reply", "id": "u1", "quantity": 4},
        {"organization": "acme", "feature": "poetry", "id": "u2"},
        {"organization": "nobody", "feature": "smart_reply", "id": "u3"},
        {"organization": "acme", "feature": "kb_answer", "id": "u4", "quantity": 4},
        {"organization": "acme", "feature": "kb_answer", "id": "u5", "agent": "sales"},
        {"organization": "acme", "feature": "smart_reply", "id": "u1", "quantity": 4},
    )
    answered = _batch(api, *uses)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["accepted"], body["duplicates"], body["refused"]) == (2, 1, 3)
    results = body["results"]
    assert [(r["index"], r["id"], r["accepted"], r["code"]) for r in results] == [
        (0, "u1", True, None),
        (1, "u2", False, "unknown_feature"),
        (2, "u3", False, "not_found"),
        (3, "u4", False, "credits_exhausted"),
        (4, "u5", True, None),
        (5, "u1", True, None),
    ]
    assert results[3]["message"].startswith("Not enough AI credits")
    consumed = [r["consumed"] for r in results if r["consumed"]]
    assert [(c["credits"], c["balance"], c["agent"], c["duplicate"]) for c in consumed] == [
        (4, 6, None, False), (2, 4, "sales", False), (4, 6, None, True),
    ]  # fmt: skip
    again = _batch(api, *uses).json()
    assert (again["accepted"], again["duplicates"], again["refused"]) == (0, 3, 3)
    view = api.platform.get("/v1/credits", organization="acme").json()
    assert view["balance"] == 4


USE = {"organization": "acme", "feature": "smart_reply", "id": "x"}


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("platform", {"uses": []}, 422, "invalid_request"),
        ("platform", {"uses": [{**USE, "id": f"u{i}"} for i in range(1_001)]}, 422,
         "invalid_request"),
        ("platform", {"uses": [USE, {**USE, "quantity": 0}]}, 422, "invalid_request"),
        ("platform", {"uses": [USE, {**USE, "colour": "red"}]}, 422, "invalid_request"),
        ("platform", {"uses": USE}, 422, "invalid_request"),
        ("platform", {}, 422, "invalid_request"),
        ("alice", {"uses": [USE]}, 403, "forbidden"),
    ],
)  # fmt: skip
def test_bad_batches_change_nothing(
    api: ApiWorld, who: str, body: dict[str, Any], status: int, code: str
) -> None:
    """CRD-1, ACL-1: bad batches tried: no uses, 1,001 uses (the most is 1,000), a bad use
    (0 uses, an unknown field) among good ones, one use instead of a list, no `uses`
    (422, refused whole), and a member's batch (403); nothing changes."""
    api.platform.post("/v1/credits/top-up", {"organization": "acme", "credits": 10})
    caller = api.platform if who == "platform" else api.member("acme", who)
    before = _state(api)
    problem(caller.post("/v1/credits/consume/batch", body), status, code)
    assert _state(api) == before
