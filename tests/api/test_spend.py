"""The spend cap (LIM-6) and auto top-up (CRD-6) through the API.

Bad requests tried, each answering problem+json and changing nothing (on both databases):
caps of "0", "-5.00", "1.001", "abc" (400 `invalid_spend_cap`), 50 as a number (422), an
unknown field (422), from a plain member (403) and from another organization's owner
(404); auto top-up thresholds/credits of 0, 2.5 and "5" (422), only one of the two (400
`invalid_auto_top_up`), from a plain member (403); a top-up past the cap (409
`spend_cap_reached`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.api.billing import problem
from tests.api.conftest import ApiWorld, Client
from tests.api.test_credits import with_credits
from tests.integration.conftest import every_row


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme (alice owner, bob billing admin, carol member) and globex on Basic; acme has
    bought 100 credits (1.00)."""
    return with_credits(engine)


@pytest.fixture
def alice(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine, leave_out=("idempotent_requests",))


def test_lim6_set_read_and_reset_the_spend_cap(api: ApiWorld, alice: Client) -> None:
    """LIM-6: a billing admin sets a cap of 2.00; the purchase of 1.00 counts (50%); a
    top-up of 1.50 would pass it: 409 `spend_cap_reached`, nothing bought; one of 1.00
    reaches it (`spend_cap_80`, `spend_cap_100`); a reset (null) lifts it."""
    bob = api.member("acme", "bob")
    put = bob.put("/v1/credits/spend_cap", {"organization": "acme", "amount": "2.00"})
    assert put.status_code == 200, put.text
    assert put.json() == {"organization": "acme", "amount": "2.00", "spent": "1.00",
                          "currency": "USD", "percent": 50}  # fmt: skip
    before = _state(api)
    refused = alice.post("/v1/credits/top-up", {"organization": "acme", "credits": 150})
    problem(refused, 409, "spend_cap_reached")
    assert _state(api) == before
    assert alice.post("/v1/credits/top-up", {"organization": "acme", "credits": 100}).is_success
    got = alice.get("/v1/credits/spend_cap", organization="acme").json()
    assert (got["spent"], got["percent"]) == ("2.00", 100)
    kinds = [n["kind"] for n in api.platform.get("/v1/notices", limit=100).json()["data"]]
    assert kinds.count("spend_cap_80") == kinds.count("spend_cap_100") == 1
    reset = alice.put("/v1/credits/spend_cap", {"organization": "acme", "amount": None})
    assert (reset.json()["amount"], reset.json()["percent"]) == (None, None)
    assert alice.post("/v1/credits/top-up", {"organization": "acme", "credits": 100}).is_success


def test_crd6_set_read_and_turn_off_auto_top_up(api: ApiWorld, alice: Client) -> None:
    """CRD-6: on with a threshold and credits, read back, off with both null."""
    body = {"organization": "acme", "threshold": 50, "credits": 200}
    put = alice.put("/v1/credits/auto_top_up", body)
    assert put.status_code == 200, put.text
    assert put.json() == {"organization": "acme", "threshold": 50, "credits": 200,
                          "in_flight": False, "balance": 100}  # fmt: skip
    used = api.platform.post(
        "/v1/credits/consume",
        {"organization": "acme", "feature": "smart_reply", "id": "u1", "quantity": 60},
    )
    assert used.status_code == 200, used.text
    assert alice.get("/v1/credits/auto_top_up", organization="acme").json()["in_flight"]
    off = alice.put("/v1/credits/auto_top_up", {**body, "threshold": None, "credits": None})
    assert (off.json()["threshold"], off.json()["credits"]) == (None, None)


@pytest.mark.parametrize(
    ("who", "amount", "status", "code"),
    [
        ("alice", "0", 400, "invalid_spend_cap"),
        ("alice", "-5.00", 400, "invalid_spend_cap"),
        ("alice", "1.001", 400, "invalid_spend_cap"),
        ("alice", "abc", 400, "invalid_spend_cap"),
        ("alice", 50, 422, "invalid_request"),
        ("carol", "10.00", 403, "forbidden"),
        ("gina", "10.00", 404, "not_found"),
    ],
)  # fmt: skip
def test_lim6_bad_caps_change_nothing(
    api: ApiWorld, who: str, amount: Any, status: int, code: str
) -> None:
    caller = api.member("globex" if who == "gina" else "acme", who)
    before = _state(api)
    body = {"organization": "acme", "amount": amount}
    problem(caller.put("/v1/credits/spend_cap", body), status, code)
    problem(caller.put("/v1/credits/spend_cap", {**body, "extra": 1}), 422, "invalid_request")
    assert _state(api) == before


@pytest.mark.parametrize(
    ("who", "threshold", "credits", "status", "code"),
    [
        ("alice", 0, 10, 422, "invalid_request"),
        ("alice", 2.5, 10, 422, "invalid_request"),
        ("alice", 10, "5", 422, "invalid_request"),
        ("alice", 10, None, 400, "invalid_auto_top_up"),
        ("carol", 10, 10, 403, "forbidden"),
    ],
)  # fmt: skip
def test_crd6_bad_settings_change_nothing(
    api: ApiWorld, who: str, threshold: Any, credits: Any, status: int, code: str
) -> None:
    caller = api.member("acme", who)
    before = _state(api)
    body = {"organization": "acme", "threshold": threshold, "credits": credits}
    problem(caller.put("/v1/credits/auto_top_up", body), status, code)
    assert _state(api) == before
