"""OPS-4: bad input never answers 5xx. Times at the edge of what a datetime holds (year 1
and year 9999, with and without an offset) were 500s with a traceback in
`GET /v1/credits/spend?since=`, a grant's `expires_at` and a plan change's `when`: each is
now a 400 `time_out_of_range` (domain/utc.py checks the range before any arithmetic) and
changes nothing. Inputs tried: 0001-01-01T00:00:00+01:00, 0001-01-01T00:00:00Z,
9999-12-31T23:59:59-01:00, 9999-12-31T00:00:00Z, 9999-12-31T23:59:59.999999+14:00."""

from __future__ import annotations

import pytest

from tests.api.billing import make_organization, problem, subscribe, the_subscription
from tests.api.conftest import ApiWorld, Client
from tests.api.test_credits import api as credits_world

api = pytest.fixture(credits_world.__wrapped__, name="api")  # type: ignore[attr-defined]


@pytest.fixture
def alice(api: ApiWorld) -> Client:
    return api.member("acme", "alice")


FAR_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T00:00:00Z",
    "9999-12-31T23:59:59.999999+14:00",
]


@pytest.mark.parametrize("moment", FAR_TIMES)
def test_ops4_spend_since_out_of_range_is_400(alice: Client, moment: str) -> None:
    for name in ("since", "until"):
        answer = alice.get("/v1/credits/spend", organization="acme", **{name: moment})
        body = problem(answer, 400, "time_out_of_range")
        assert name in body["detail"]


@pytest.mark.parametrize("moment", FAR_TIMES)
def test_ops4_grant_expires_at_out_of_range_is_400(
    api: ApiWorld, alice: Client, moment: str
) -> None:
    before = alice.get("/v1/credits", organization="acme").json()
    grant = {"organization": "acme", "credits": 5, "id": "far-grant", "expires_at": moment}
    answer = api.platform.post("/v1/credits/grants", grant)
    assert answer.status_code == 400, answer.text  # out of range, or in the past
    assert answer.json()["code"] in ("time_out_of_range", "invalid_expiry")
    assert alice.get("/v1/credits", organization="acme").json() == before


@pytest.mark.parametrize("moment", FAR_TIMES)
def test_ops4_plan_change_when_out_of_range_is_400(billing_api: ApiWorld, moment: str) -> None:
    make_organization(billing_api)
    acme = billing_api.member("acme", "alice")
    subscribe(billing_api, acme)
    card = the_subscription(acme)
    change = acme.post(f"/v1/subscriptions/{card['id']}/change", {"plan": "pro", "when": moment})
    assert change.status_code == 400, change.text
    assert change.json()["code"] in ("time_out_of_range", "invalid_timing")
    assert the_subscription(acme) == card
