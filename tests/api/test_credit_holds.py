"""Credit holds (CRD-5) and the low-balance alert (CRD-7) through the API.

Bad requests tried, each answering problem+json and changing nothing (on both databases):
holds of 0, -5, 2.5, "10" and 10,000,001 credits (422), a timeout of 0, 86,401, 1.5 and
"60" seconds (422), an unknown feature (400 `unknown_feature`), an unknown organization
(404), a hold the balance cannot cover (409 `credits_exhausted`), a member making a hold
(403); settles of 0, -1, 2.5 and 10,000,001 credits (422), an unknown hold (404), a hold
id of 0 (422), another organization's hold (404), a settle twice and a release after a
settle (409 `hold_closed`), an unknown field (422); low-balance thresholds of 0, -1, 2.5
and "5" (422), from a plain member (403) and from another organization's owner (404).
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
    """acme (alice owner, bob billing admin, carol member) and globex, both on Basic;
    acme has bought 100 credits."""
    return with_credits(engine)


@pytest.fixture
def alice(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


def _state(api: ApiWorld) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(api.world.engine, leave_out=("idempotent_requests",))


def _hold(api: ApiWorld, credits: Any = 30, **more: Any) -> Any:
    body = {"organization": "acme", "feature": "smart_reply", "credits": credits, **more}
    return api.platform.post("/v1/credits/holds", body)


def _credits(alice: Client) -> dict[str, Any]:
    found = alice.get("/v1/credits", organization="acme")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


def test_crd5_hold_settle_release_and_the_balance_shows_held_apart(
    api: ApiWorld, alice: Client
) -> None:
    """CRD-5: a hold takes its estimate from the balance at once (shown apart as held);
    a settle takes the real cost and returns the rest; a release returns it all; a settle
    above the balance takes it to zero with a shortfall the next top-up repays first."""
    made = _hold(api, 30, agent="sales", timeout_seconds=120)
    assert made.status_code == 201, made.text
    hold = made.json()
    assert (hold["state"], hold["credits"], hold["balance"], hold["held"]) == ("held", 30, 70, 30)
    view = _credits(alice)
    assert (view["balance"], view["held"], view["owed"]) == (70, 30, 0)
    checked = api.platform.post(
        "/v1/check", {"organization": "acme", "action": "use_ai", "feature": "smart_reply"}
    )
    numbers = checked.json()["numbers"]
    assert (numbers["balance"], numbers["held"], numbers["remaining"]) == (70, 30, 69)
    settled = api.platform.post(f"/v1/credits/holds/{hold['id']}/settle", {"credits": 20})
    assert settled.status_code == 200, settled.text
    assert (settled.json()["state"], settled.json()["balance"], settled.json()["held"]) == (
        "settled", 80, 0,
    )  # fmt: skip
    second = _hold(api, 50).json()
    released = api.platform.post(f"/v1/credits/holds/{second['id']}/release")
    assert (released.json()["state"], released.json()["balance"]) == ("released", 80)
    third = _hold(api, 80).json()
    assert third["balance"] == 0
    over = api.platform.post(f"/v1/credits/holds/{third['id']}/settle", {"credits": 95})
    body = over.json()
    assert (body["balance"], body["settled_credits"], body["shortfall"]) == (0, 95, 15)
    assert (_credits(alice)["balance"], _credits(alice)["owed"]) == (0, 15)
    problem(_hold(api, 1), 409, "credits_exhausted")
    alice.post("/v1/credits/top-up", {"organization": "acme", "credits": 40})
    assert (_credits(alice)["balance"], _credits(alice)["owed"]) == (25, 0)
    history = alice.get("/v1/credits/history", organization="acme", limit=100).json()["data"]
    kinds = [entry["kind"] for entry in history]
    assert kinds.count("hold") == 3 and kinds.count("release") == 3
    assert kinds[-2:] == ["grant", "repayment"]
    assert [e["shortfall"] for e in history if e["kind"] == "use"] == [None, 15]
    assert sum(entry["amount"] for entry in history) == 25  # CRD-2


def test_crd5_an_idempotency_key_makes_one_hold(api: ApiWorld) -> None:
    """CRD-5: a hold sent again with the same Idempotency-Key is made once."""
    body = {"organization": "acme", "feature": "smart_reply", "credits": 10}
    key = {"Idempotency-Key": "hold-1"}
    first = api.platform.post("/v1/credits/holds", body, headers=key)
    again = api.platform.post("/v1/credits/holds", body, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["held"] == 10


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"credits": 0}, 422, "invalid_request"),
        ({"credits": -5}, 422, "invalid_request"),
        ({"credits": 2.5}, 422, "invalid_request"),
        ({"credits": "10"}, 422, "invalid_request"),
        ({"credits": 10_000_001}, 422, "invalid_request"),
        ({"timeout_seconds": 0}, 422, "invalid_request"),
        ({"timeout_seconds": 86_401}, 422, "invalid_request"),
        ({"timeout_seconds": 1.5}, 422, "invalid_request"),
        ({"timeout_seconds": "60"}, 422, "invalid_request"),
        ({"feature": "nope"}, 400, "unknown_feature"),
        ({"organization": "nobody"}, 404, "not_found"),
        ({"credits": 101}, 409, "credits_exhausted"),
        ({"surprise": 1}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_crd5_bad_holds_change_nothing(
    api: ApiWorld, body: dict[str, Any], status: int, code: str
) -> None:
    """CRD-5: each bad hold is problem+json, nothing held."""
    before = _state(api)
    sent = {"organization": "acme", "feature": "smart_reply", "credits": 5, **body}
    problem(api.platform.post("/v1/credits/holds", sent), status, code)
    assert _state(api) == before


def test_crd5_only_the_platform_makes_holds(api: ApiWorld, alice: Client) -> None:
    before = _state(api)
    body = {"organization": "acme", "feature": "smart_reply", "credits": 5}
    problem(alice.post("/v1/credits/holds", body), 403, "forbidden")
    assert _state(api) == before


@pytest.mark.parametrize(
    ("action", "body", "status", "code"),
    [
        ("settle", {"credits": 0}, 422, "invalid_request"),
        ("settle", {"credits": -1}, 422, "invalid_request"),
        ("settle", {"credits": 2.5}, 422, "invalid_request"),
        ("settle", {"credits": 10_000_001}, 422, "invalid_request"),
        ("settle", {"credits": 5, "extra": True}, 422, "invalid_request"),
        ("settle", {"credits": 5, "organization": "globex"}, 404, "not_found"),
        ("release", {"organization": "globex"}, 404, "not_found"),
    ],
)  # fmt: skip
def test_crd5_bad_settles_and_releases_change_nothing(
    api: ApiWorld, action: str, body: dict[str, Any], status: int, code: str
) -> None:
    """CRD-5: bad settles and releases of an open hold (bad credits, another
    organization's hold) are refused and the hold stays as it was."""
    hold = _hold(api, 30).json()
    before = _state(api)
    problem(api.platform.post(f"/v1/credits/holds/{hold['id']}/{action}", body), status, code)
    assert _state(api) == before


def test_crd5_unknown_and_closed_holds_are_refused(api: ApiWorld) -> None:
    """CRD-5: an unknown hold is 404; a settled hold cannot be settled or released again
    (409 `hold_closed`); a hold id of 0 is 422; nothing changes."""
    hold = _hold(api, 30).json()
    settled = api.platform.post(f"/v1/credits/holds/{hold['id']}/settle", {"credits": 10})
    assert settled.status_code == 200, settled.text
    before = _state(api)
    problem(api.platform.post("/v1/credits/holds/999999/settle", {"credits": 5}), 404, "not_found")
    problem(api.platform.post("/v1/credits/holds/999999/release"), 404, "not_found")
    problem(api.platform.post("/v1/credits/holds/0/release"), 422, "invalid_request")
    again = api.platform.post(f"/v1/credits/holds/{hold['id']}/settle", {"credits": 5})
    problem(again, 409, "hold_closed")
    problem(api.platform.post(f"/v1/credits/holds/{hold['id']}/release"), 409, "hold_closed")
    assert _state(api) == before


def test_crd7_low_balance_alert(api: ApiWorld, alice: Client) -> None:
    """CRD-7: alice sets 50; a hold taking the balance from 100 to 40 tells `credits.low`
    once; the next hold (still below) tells nothing; back above and below again: told
    again."""
    put = alice.put("/v1/credits/low_balance_alert", {"organization": "acme", "threshold": 50})
    assert put.status_code == 200, put.text
    assert put.json() == {"organization": "acme", "threshold": 50, "balance": 100}
    assert _credits(alice)["low_threshold"] == 50
    first = _hold(api, 60).json()
    _hold(api, 10)
    api.platform.post(f"/v1/credits/holds/{first['id']}/release")  # 90: above again
    _hold(api, 45)  # 45: below again
    notices = api.platform.get("/v1/notices", organization="acme", limit=100).json()["data"]
    lows = [n for n in notices if n["kind"] == "credits.low"]
    assert [n["payload"]["balance"] for n in lows] == [40, 45]


@pytest.mark.parametrize(
    ("who", "threshold", "status", "code"),
    [
        ("alice", 0, 422, "invalid_request"),
        ("alice", -1, 422, "invalid_request"),
        ("alice", 2.5, 422, "invalid_request"),
        ("alice", "5", 422, "invalid_request"),
        ("carol", 50, 403, "forbidden"),
        ("gina", 50, 404, "not_found"),
    ],
)  # fmt: skip
def test_crd7_bad_thresholds_change_nothing(
    api: ApiWorld, who: str, threshold: Any, status: int, code: str
) -> None:
    caller = api.member("globex" if who == "gina" else "acme", who)
    before = _state(api)
    body = {"organization": "acme", "threshold": threshold}
    problem(caller.put("/v1/credits/low_balance_alert", body), status, code)
    assert _state(api) == before
