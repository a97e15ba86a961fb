"""ACL-3 and OPS-4 for portal session tokens.

- A forged token is refused (401) before its payload is decoded: payloads with
  `"e": 1e999`, 2,000-deep nesting, not JSON, not base64, and the old two-part format
  were 500s with a traceback; each is now a 401 on the API and on /portal/enter.
- A removed member re-added under the same code does not revive the old, unexpired token
  (it came back with the new role) and does not keep the old e-mail.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.billing import make_organization, subscribe
from tests.api.conftest import ApiWorld

ORG = {
    "code": "acme",
    "members": [
        {"code": "alice", "email": "alice@acme.test", "role": "owner"},
        {"code": "bob", "email": "bob@acme.test", "role": "member"},
    ],
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


DEEP = "[" * 2000 + "]" * 2000
PAYLOADS = [
    b'{"p":1,"o":1,"m":"alice","e":1e999}',
    b'{"o":1,"m":"alice","e":1e999,"i":1}',
    DEEP.encode(),
    ('{"p":1,"o":1,"m":"alice","e":' + DEEP + "}").encode(),
    b"not json",
    b"\xff\xfe",
]


def _forgeries(token: str) -> list[str]:
    platform = token.removeprefix("ps_").split(".")[0]
    signature = token.rsplit(".", 1)[1]
    found = []
    for payload in PAYLOADS:
        found.append(f"ps_{_b64(payload)}.{signature}")  # the old two-part format
        found.append(f"ps_{platform}.{_b64(payload)}.{signature}")
    found += [f"ps_{platform}.!!!.{signature}", "ps_" + "." * 3, "ps_9" * 600, "ps_1e999.x.y"]
    return found


def test_acl3_ops4_forged_portal_tokens_get_401_not_500(api: ApiWorld) -> None:
    assert api.platform.post("/v1/organizations", ORG).status_code == 201
    alice = api.member("acme", "alice")
    for forged in _forgeries(alice.token):
        answer = alice.as_(forged).get("/v1/organizations")
        assert answer.status_code == 401, (forged[:80], answer.text)
        page = api.platform.http.get("/portal/enter", params={"token": forged[:2000]})
        assert page.status_code in (401, 422), (forged[:80], page.status_code)
    assert alice.get("/v1/organizations").status_code == 200  # the real one still works


@pytest.mark.parametrize("role", ["owner", "member"])
def test_acl3_a_readded_member_gets_no_old_token_nor_old_email(
    billing_api: ApiWorld, role: str
) -> None:
    api = billing_api
    make_organization(api)
    subscribe(api, api.member("acme", "alice"))
    bob = api.member("acme", "bob")
    assert bob.get("/v1/organizations").status_code == 200
    members = api.platform.get("/v1/members", organization="acme").json()["data"]
    bob_id = next(m["id"] for m in members if m["code"] == "bob")
    assert api.platform.delete(f"/v1/members/{bob_id}").status_code == 200
    assert bob.get("/v1/organizations").status_code == 401
    again = api.platform.post("/v1/members", {"organization": "acme", "code": "bob", "role": role})
    assert again.status_code == 201, again.text
    assert again.json()["email"] is None  # a new membership: the old e-mail is gone
    assert bob.get("/v1/organizations").status_code == 401  # the old token stays dead
    again_session = {"organization": "acme", "member": "bob"}
    assert bob.post("/v1/portal_sessions", again_session).status_code == 401
    fresh = api.member("acme", "bob")
    assert fresh.get("/v1/organizations").status_code == 200
    assert api.platform.http.get("/portal/enter", params={"token": bob.token}).status_code == 401
    shown = json.dumps(api.platform.get("/v1/members", organization="acme").json())
    assert "bob@acme.test" not in shown
