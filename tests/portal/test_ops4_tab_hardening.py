"""OPS-4, ACL-3: the billing tab's hardening, over plain HTTP (as test_pages.py).

Found: no security headers (framing, no-store, nosniff, Referrer-Policy), no logout,
portal tokens whole in the access log, no CSRF token (a Strict cookie and an Origin check
that ignored the scheme and let a missing Origin pass), and `GET /portal/enter?token=`
switched a browser's session without asking. Bad posts tried: no CSRF token, a wrong
one, another session's; Origin of another site, of the same host over https, "null",
none at all (and no Referer); each is a 403 that changes nothing.
"""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.api.access_log import RedactSecrets, redact
from tabkeeper.portal.web import CSRF_FIELD, SESSION_COOKIE, csrf_token
from tests.api.billing import subscribe
from tests.api.conftest import ApiWorld
from tests.portal.test_pages import api as pages_api
from tests.portal.test_pages import post, tab


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme (test_pages.py's), subscribed to Basic."""
    world: ApiWorld = pages_api.__wrapped__(engine)  # type: ignore[attr-defined]
    subscribe(world, world.member("acme", "alice"), plan="basic")
    return world


def _limit(client: TestClient) -> str | None:
    found = re.search(r'name="limit"[^>]*value="([^"]*)"', client.get("/portal/").text)
    return None if found is None else found.group(1)


def test_ops4_every_answer_of_the_tab_has_security_headers(api: ApiWorld) -> None:
    alice = tab(api, "alice")
    pages = {
        "/portal/": 200,
        "/portal/enter?token=ps_1.x.y": 401,
        "/portal/no-such-page": 404,
        "/portal/static/portal.js": 200,
    }
    for path, status in pages.items():
        answer = alice.get(path)
        assert answer.status_code == status, path
        headers = answer.headers
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
        if "static" not in path:
            assert headers["cache-control"] == "no-store", path


def test_ops4_every_form_of_the_tab_carries_the_csrf_token(api: ApiWorld) -> None:
    alice = tab(api, "alice")
    page = alice.get("/portal/").text
    forms = re.findall(r"<form method=\"post\".*?</form>", page, re.S)
    assert len(forms) >= 3
    expected = csrf_token(alice.cookies.get(SESSION_COOKIE) or "")
    for form in forms:
        assert f'name="{CSRF_FIELD}" value="{expected}"' in form, form[:200]
    assert (alice.cookies.get(SESSION_COOKIE) or "x") not in expected


@pytest.mark.parametrize("sent", [None, "", "wrong", "other-session"])
def test_ops4_a_post_without_the_right_csrf_token_changes_nothing(
    api: ApiWorld, sent: str | None
) -> None:
    alice = tab(api, "alice")
    before = _limit(alice)
    form = {"limit": "7"}
    if sent == "other-session":
        sent = csrf_token(api.member("acme", "bob").token)
    if sent is not None:
        form[CSRF_FIELD] = sent
    answer = alice.post("/portal/limit", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert _limit(alice) == before
    assert post(alice, "/portal/limit", limit="7").status_code == 303  # with it: done
    assert _limit(alice) == "7"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://testserver"},  # the scheme counts
        {"origin": "http://testserver:8080"},
        {"origin": "https://evil.test"},
        {"origin": "null"},
        {"origin": ""},
        {"referer": "https://evil.test/x"},
    ],
)
def test_ops4_origin_must_be_this_one_scheme_included(
    api: ApiWorld, headers: dict[str, str]
) -> None:
    alice = tab(api, "alice")
    del alice.headers["origin"]
    before = _limit(alice)
    form = {"limit": "9", CSRF_FIELD: csrf_token(alice.cookies.get(SESSION_COOKIE) or "")}
    answer = alice.post("/portal/limit", data=form, headers=headers, follow_redirects=False)
    assert answer.status_code == 403, headers
    assert _limit(alice) == before
    same = {"referer": "http://testserver/portal/"}  # no Origin: a same-origin Referer
    assert (
        alice.post("/portal/limit", data=form, headers=same, follow_redirects=False).status_code
        == 303
    )


def test_acl3_logout_ends_the_session_and_clears_the_cookie(api: ApiWorld) -> None:
    alice = tab(api, "alice")
    token = alice.cookies.get(SESSION_COOKIE) or ""
    assert "Log out" in alice.get("/portal/").text
    refused = alice.post("/portal/logout", follow_redirects=False)  # no CSRF token
    assert refused.status_code == 403
    assert alice.get("/portal/").status_code == 200
    out = post(alice, "/portal/logout")
    assert out.status_code == 200 and "logged out" in out.text
    cookies = out.headers.get_list("set-cookie")
    assert any(c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" in c for c in cookies)
    assert api.platform.as_(token).get("/v1/organizations").status_code == 401
    again = TestClient(api.platform.http.app)
    assert again.get("/portal/enter", params={"token": token}).status_code == 401
    assert tab(api, "alice").get("/portal/").status_code == 200  # a new session works


def test_acl3_enter_asks_before_switching_to_another_session(api: ApiWorld) -> None:
    alice = tab(api, "alice")
    mine = alice.cookies.get(SESSION_COOKIE)
    bob = api.member("acme", "bob").token
    asked = alice.get("/portal/enter", params={"token": bob}, follow_redirects=False)
    assert asked.status_code == 200
    assert "Switch billing session" in asked.text and "alice" in asked.text
    assert "bob" in asked.text
    assert "set-cookie" not in asked.headers
    assert alice.cookies.get(SESSION_COOKIE) == mine
    refused = alice.post("/portal/enter", data={"token": bob}, follow_redirects=False)
    assert refused.status_code == 403 and alice.cookies.get(SESSION_COOKIE) == mine
    switched = post(alice, "/portal/enter", token=bob)
    assert switched.status_code == 303
    assert alice.cookies.get(SESSION_COOKIE) == bob
    fresh = api.member("acme", "bob").token  # the same member again: no question
    again = alice.get("/portal/enter", params={"token": fresh}, follow_redirects=False)
    assert again.status_code == 303


def test_ops4_the_access_log_never_holds_a_token() -> None:
    token = "ps_1.eyJvIjoxfQ.c2lnbmF0dXJl"
    assert redact(f"/portal/enter?token={token}") == "/portal/enter?token=[redacted]"
    assert redact(f"/x?a=1&TOKEN={token}&b=2") == "/x?a=1&TOKEN=[redacted]&b=2"
    assert redact("/portal/?checkout=cs_1") == "/portal/?checkout=cs_1"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/portal/enter?token={token}", "1.1", 303), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert token not in record.getMessage() and "[redacted]" in record.getMessage()


def test_ops4_serve_keeps_tokens_out_of_uvicorns_access_log() -> None:
    """As `serve` runs it: the filter on, then uvicorn's own logging configuration, then
    an access line written by uvicorn's formatter."""
    import io
    import logging.config

    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.logging import AccessFormatter

    from tabkeeper.api.access_log import redact_access_log

    redact_access_log()
    logging.config.dictConfig(LOGGING_CONFIG)
    logger = logging.getLogger("uvicorn.access")
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    logger.addHandler(handler)
    try:
        target = "/portal/enter?token=ps_1.eyJvIjoxfQ.c2ln"
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", target, "1.1", 303)
    finally:
        logger.removeHandler(handler)
    assert "GET /portal/enter?token=[redacted] HTTP/1.1" in written.getvalue()
    assert "eyJvIjoxfQ" not in written.getvalue()
