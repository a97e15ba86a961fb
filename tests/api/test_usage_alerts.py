"""PUT/GET /v1/usage/alerts: members subscribe to usage alerts for themselves (LIM-5);
the platform names the member; another organization is 404 (ACL-3)."""

from __future__ import annotations

from typing import Any

from tests.api.billing import ACME, GLOBEX, make_organization, problem
from tests.api.conftest import ApiWorld, Client


def test_a_plain_member_subscribes_for_themselves(billing_api: ApiWorld) -> None:
    """LIM-5: carol (a plain member, no billing rights) sets and reads her own alerts."""
    make_organization(billing_api, ACME)
    carol = billing_api.member("acme", "carol")
    answer = carol.put("/v1/usage/alerts", {"organization": "acme", "meters": ["minutes"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "organization": "acme", "member": "carol", "meters": ["minutes"],
        "thresholds": [50, 80, 100],
    }  # fmt: skip
    read = carol.get("/v1/usage/alerts", organization="acme")
    assert read.json()["meters"] == ["minutes"]
    by_platform = billing_api.platform.get("/v1/usage/alerts", organization="acme", member="carol")
    assert by_platform.json()["meters"] == ["minutes"]


def test_refusals_change_nothing(billing_api: ApiWorld) -> None:
    """Bad inputs tried: a member setting another member's alerts (403), the platform
    without a member (400), an unknown meter (400 unknown_meter), a meter code with
    capitals (422), another organization (404), an unknown member (404)."""
    make_organization(billing_api, ACME)
    make_organization(billing_api, GLOBEX)
    carol = billing_api.member("acme", "carol")
    platform = billing_api.platform

    def put(client: Client, body: dict[str, object]) -> Any:
        return client.put("/v1/usage/alerts", body)

    assert put(carol, {"organization": "acme", "meters": ["sessions"]}).status_code == 200
    problem(put(carol, {"organization": "acme", "member": "bob", "meters": []}), 403, "forbidden")
    problem(put(platform, {"organization": "acme", "meters": []}), 400, "invalid_input")
    unknown = problem(
        put(carol, {"organization": "acme", "meters": ["sessions", "tokens"]}),
        400, "unknown_meter",
    )  # fmt: skip
    assert "'tokens' is not a meter" in unknown["detail"]
    assert put(carol, {"organization": "acme", "meters": ["Minutes"]}).status_code == 422
    problem(put(carol, {"organization": "globex", "meters": []}), 404, "not_found")
    problem(
        put(platform, {"organization": "acme", "member": "zed", "meters": []}), 404, "not_found"
    )
    assert carol.get("/v1/usage/alerts", organization="acme").json()["meters"] == ["sessions"]
