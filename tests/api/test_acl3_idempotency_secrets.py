"""ACL-3: idempotency records never keep a secret, and a replay is only for a caller
that is still valid.

Found: with an Idempotency-Key, `POST /v1/api_keys`, `/v1/webhook_endpoints` and
`/v1/portal_sessions` kept the new key, secret or token in plain text for 24 hours, and a
replay with a revoked API key answered 201 with the new, valid key. Now: the kept answer
has no secret (a replay shows the object with the secret null and
`Idempotent-Secret-Withheld: true`), a portal session is not kept at all (a retry makes a
new one), and a revoked key gets 401 on replay.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.api.conftest import ApiWorld

PUBLIC_URL = "https://93.184.215.14/hooks"  # a literal public address: no DNS, never sent


def _kept(api: ApiWorld) -> str:
    with api.world.engine.connect() as connection:
        rows = connection.execute(text("SELECT caller, body FROM idempotent_requests")).all()
    return repr(rows)


def _post(api: ApiWorld, token: str, path: str, body: Any, key: str) -> Any:
    return api.platform.as_(token).post(path, body, {"Idempotency-Key": key})


def test_acl3_api_key_replay_has_no_key_and_nothing_keeps_it(api: ApiWorld) -> None:
    first = _post(api, api.platform.token, "/v1/api_keys", {"name": "ci"}, "k1")
    assert first.status_code == 201
    key = first.json()["key"]
    assert key.startswith("tk_")
    again = _post(api, api.platform.token, "/v1/api_keys", {"name": "ci"}, "k1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["idempotent-secret-withheld"] == "true"
    assert again.json() == {**first.json(), "key": None}
    assert key not in _kept(api) and key[10:] not in _kept(api)  # only its shown prefix
    assert len(api.platform.get("/v1/api_keys").json()["data"]) == 2  # made once


def test_acl3_webhook_secret_is_not_kept_for_replays(api: ApiWorld) -> None:
    first = _post(api, api.platform.token, "/v1/webhook_endpoints", {"url": PUBLIC_URL}, "w1")
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    again = _post(api, api.platform.token, "/v1/webhook_endpoints", {"url": PUBLIC_URL}, "w1")
    assert again.status_code == 201
    assert again.json() == {**first.json(), "secret": None}
    assert again.headers["idempotent-secret-withheld"] == "true"
    assert secret not in _kept(api) and "whsec_" not in _kept(api)
    assert len(api.platform.get("/v1/webhook_endpoints").json()["data"]) == 1


def test_acl3_portal_session_tokens_are_never_kept(api: ApiWorld) -> None:
    assert api.platform.post("/v1/organizations", {"code": "acme"}).status_code == 201
    body = {"organization": "acme", "member": "owner"}
    first = _post(api, api.platform.token, "/v1/portal_sessions", body, "p1")
    again = _post(api, api.platform.token, "/v1/portal_sessions", body, "p1")
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in again.headers  # a new session, not a replay
    assert "ps_" not in _kept(api)
    for answer in (first, again):
        assert api.platform.as_(answer.json()["token"]).get("/v1/organizations").status_code == 200


def test_acl3_a_revoked_key_gets_401_on_replay(api: ApiWorld) -> None:
    made = api.platform.post("/v1/api_keys", {"name": "second"}).json()
    second = made["key"]
    first = _post(api, second, "/v1/api_keys", {"name": "third"}, "same")
    assert first.status_code == 201
    assert api.platform.delete(f"/v1/api_keys/{made['id']}").status_code == 200
    replay = _post(api, second, "/v1/api_keys", {"name": "third"}, "same")
    assert replay.status_code == 401, replay.text
    assert replay.json()["code"] == "unauthorized"
    assert "idempotent-replayed" not in replay.headers


def test_acl3_idempotency_keys_are_scoped_per_caller(api: ApiWorld) -> None:
    """The same Idempotency-Key from two members of two organizations, or from the
    platform and a member, never meets: each gets its own answer."""
    for code in ("acme", "globex"):
        assert api.platform.post("/v1/organizations", {"code": code}).status_code == 201
    acme, globex = api.member("acme", "owner"), api.member("globex", "owner")
    seen = []
    for client in (acme, globex, api.platform):
        answer = client.post(
            "/v1/members", {"organization": "acme", "code": "dan"}, {"Idempotency-Key": "x"}
        )
        seen.append((answer.status_code, answer.headers.get("idempotent-replayed")))
    assert seen[1][1] is None and seen[2][1] is None  # nobody got acme's answer
    assert seen[1][0] == 404  # globex's owner does not see acme
