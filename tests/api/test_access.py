"""Who may do what (ACL-1..3), API keys, portal sessions, idempotency, lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import ApiWorld

ORG = {
    "code": "acme",
    "members": [
        {"code": "alice", "email": "alice@acme.test", "role": "owner"},
        {"code": "bob", "email": "bob@acme.test", "role": "billing_admin"},
        {"code": "carol", "role": "member"},
    ],
}


def test_a_wrong_api_key_gets_401(api: ApiWorld) -> None:
    """ACL-3: wrong, missing and malformed credentials are refused with problem+json."""
    for token in ("tk_wrong", "nonsense", ""):
        response = api.platform.as_(token).get("/v1/organizations")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthorized"
    assert api.platform.http.get("/v1/organizations").status_code == 401


def test_api_keys_are_stored_hashed_and_can_be_revoked(api: ApiWorld) -> None:
    """ACL-3: the key is shown once; the database keeps only its hash."""
    made = api.platform.post("/v1/api_keys", {"name": "ci"})
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("tk_")
    listed = api.platform.get("/v1/api_keys").json()["data"]
    assert all(item["key"] is None for item in listed)
    from sqlalchemy import text

    with api.world.engine.connect() as connection:
        stored = [row[0] for row in connection.execute(text("SELECT key_hash FROM api_keys"))]
    assert key not in stored
    assert api.platform.as_(key).get("/v1/organizations").status_code == 200
    assert api.platform.delete(f"/v1/api_keys/{made.json()['id']}").status_code == 200
    assert api.platform.as_(key).get("/v1/organizations").status_code == 401


def test_organizations_and_portal_sessions(api: ApiWorld) -> None:
    """ACL-1, ACL-3: a member's portal session acts as that member; another
    organization's objects answer 404; a plain member may not manage billing."""
    assert api.platform.post("/v1/organizations", ORG).status_code == 201
    assert api.platform.post("/v1/organizations", {"code": "globex"}).status_code == 201
    alice = api.member("acme", "alice")
    assert [o["code"] for o in alice.get("/v1/organizations").json()["data"]] == ["acme"]
    assert alice.get("/v1/organizations/acme").status_code == 200
    assert alice.get("/v1/organizations/globex").status_code == 404
    globex_owner = api.member("globex", "owner")
    members = globex_owner.get("/v1/members").json()["data"]
    assert [m["code"] for m in members] == ["owner"]
    acme_members = alice.get("/v1/members", organization="acme").json()["data"]
    assert {m["code"] for m in acme_members} == {"alice", "bob", "carol"}
    assert globex_owner.get("/v1/members", organization="acme").status_code == 404
    bob_id = next(m["id"] for m in acme_members if m["code"] == "bob")
    assert globex_owner.delete(f"/v1/members/{bob_id}").status_code == 404
    carol = api.member("acme", "carol")
    assert carol.post("/v1/members", {"organization": "acme", "code": "dan"}).status_code == 403
    assert alice.post("/v1/api_keys", {"name": "x"}).status_code == 403
    assert (
        alice.post("/v1/portal_sessions", {"organization": "acme", "member": "bob"}).status_code
        == 403
    )


def test_forged_and_expired_portal_sessions_get_401(api: ApiWorld) -> None:
    """ACL-3: a session token that was changed, or is past its hour, is refused."""
    api.platform.post("/v1/organizations", ORG)
    alice = api.member("acme", "alice")
    payload, signature = alice.token.rsplit(".", 1)  # ps_<platform>.<payload>.<signature>
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    assert alice.as_(forged).get("/v1/organizations").status_code == 401
    assert alice.as_(alice.token + "x").get("/v1/organizations").status_code == 401
    api.world.clock.advance(timedelta(hours=1))
    assert alice.get("/v1/organizations").status_code == 401


def test_idempotency_key_replays_the_first_response(api: ApiWorld) -> None:
    """The same key and body return the first response and do nothing twice; the same
    key with another body is a 409."""
    first = api.platform.post("/v1/organizations", {"code": "acme"}, {"Idempotency-Key": "k1"})
    again = api.platform.post("/v1/organizations", {"code": "acme"}, {"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = api.platform.post("/v1/organizations", {"code": "other"}, {"Idempotency-Key": "k1"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(api.platform.get("/v1/organizations").json()["data"]) == 1
    api.world.clock.advance(timedelta(hours=25))
    later = api.platform.post("/v1/organizations", {"code": "acme"}, {"Idempotency-Key": "k1"})
    assert later.status_code == 409  # a fresh request: acme exists now
    assert later.json()["code"] == "organization_exists"


def test_lists_page_with_cursors(api: ApiWorld) -> None:
    for i in range(5):
        api.platform.post("/v1/organizations", {"code": f"org-{i}"})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api.platform.get("/v1/organizations", **params).json()
        seen += [o["code"] for o in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert seen == [f"org-{i}" for i in range(5)]
    assert api.platform.get("/v1/organizations", cursor="garbage!").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {}, {"code": "Bad Code"}, {"code": "x", "extra": 1},
        {"code": "x", "members": [{"code": "a", "role": "boss"}]},
        {"code": "x", "members": [{"code": "a", "email": "not-an-email"}]},
        {"code": "x", "parent": "nope"},
    ],
)  # fmt: skip
def test_bad_organizations_are_refused_with_problem_json(
    api: ApiWorld, body: dict[str, object]
) -> None:
    """Bad inputs tried: empty body, invalid code, unknown field, unknown role, bad
    e-mail, unknown parent. Nothing is created."""
    response = api.platform.post("/v1/organizations", body)
    assert response.status_code in (400, 404, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert api.platform.get("/v1/organizations").json()["data"] == []


def test_nul_characters_are_refused_at_the_door(api: ApiWorld) -> None:
    """Bad inputs tried: a NUL in a JSON string, in a query string, in a path. 400, and
    nothing is created (PostgreSQL would refuse the text)."""
    refused = api.platform.post("/v1/api_keys", {"name": "a\u0000b"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "nul_character"
    assert api.platform.get("/v1/members", organization="a\u0000").status_code == 400
    assert api.platform.get("/v1/organizations/a%00b").status_code == 400
    assert [k["name"] for k in api.platform.get("/v1/api_keys").json()["data"]] == ["tests"]
