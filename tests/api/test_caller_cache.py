"""Authentication from the short-lived cache of callers (api/context.py, ACL-3): a key
revoked elsewhere stops working within CALLER_TTL, a key revoked or a member removed
through this process at once, a portal session never past its expiry; a cache hit asks
the database nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, update

from tabkeeper.api.context import CALLER_TTL, Callers
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables_access import ApiKey
from tabkeeper.services.access import Caller, credential_digest
from tests.api.conftest import ApiWorld


@contextmanager
def _statements(api: ApiWorld) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(api.world.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(api.world.engine, "before_cursor_execute", count)


def test_a_cached_key_asks_the_database_nothing_acl_3(api: ApiWorld) -> None:
    """ACL-3: the second request of a key within CALLER_TTL reads no api_keys row."""
    assert api.platform.get("/v1/catalog").status_code in (200, 404)
    with _statements(api) as seen:
        api.platform.get("/v1/catalog")
    assert not any("api_keys" in statement for statement in seen)


def test_a_key_revoked_elsewhere_stops_within_the_ttl_acl_3(api: ApiWorld) -> None:
    """ACL-3: revoked by another process (here: straight in the database), the key still
    works until CALLER_TTL has passed since it was checked, and not after."""
    assert api.platform.get("/v1/organizations").status_code == 200
    with transaction(api.world.engine) as session:
        session.execute(update(ApiKey).values(revoked_at=api.world.clock.now()))
    assert api.platform.get("/v1/organizations").status_code == 200
    api.world.clock.advance(CALLER_TTL)
    answer = api.platform.get("/v1/organizations")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


def test_a_removed_member_is_refused_at_once_acl_3(api: ApiWorld) -> None:
    """ACL-3: removing a member through the API forgets the cached callers: the member's
    portal session is refused on its next request."""
    members = {"code": "acme", "members": [{"code": "alice", "role": "owner"},
                                           {"code": "bob", "role": "member"}]}  # fmt: skip
    assert api.platform.post("/v1/organizations", members).status_code == 201
    bob = api.member("acme", "bob")
    assert bob.get("/v1/organizations").status_code == 200
    listed = api.platform.get("/v1/members", organization="acme").json()["data"]
    bob_id = next(m["id"] for m in listed if m["code"] == "bob")
    assert api.platform.delete(f"/v1/members/{bob_id}").status_code == 200
    assert bob.get("/v1/organizations").status_code == 401


def test_a_portal_session_is_trusted_to_its_expiry_and_not_a_second_more_acl_3(
    api: ApiWorld,
) -> None:
    """ACL-3: a cached session answers until the second its token expires (an hour after
    it was made), then 401, though CALLER_TTL is not over since it was last checked."""
    assert api.platform.post("/v1/organizations", {"code": "acme"}).status_code == 201
    owner = api.member("acme", "owner")
    api.world.clock.advance(timedelta(hours=1) - CALLER_TTL / 2)
    assert owner.get("/v1/organizations").status_code == 200  # checked and cached now
    api.world.clock.advance(CALLER_TTL / 2 - timedelta(microseconds=1))
    assert owner.get("/v1/organizations").status_code == 200
    api.world.clock.advance(timedelta(microseconds=1))
    assert owner.get("/v1/organizations").status_code == 401


def test_the_cache_holds_at_most_its_size() -> None:
    """Bounded: past its size the oldest entry makes room; an entry is dropped once out
    of date."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    callers = Callers(size=3)
    for i in range(5):
        callers.keep(credential_digest(f"tk_{i}"), Caller(i), now + CALLER_TTL)
    assert len(callers) == 3
    assert callers.get(credential_digest("tk_0"), now) is None
    assert callers.get(credential_digest("tk_4"), now) == Caller(4)
    assert callers.get(credential_digest("tk_4"), now + CALLER_TTL) is None
    assert len(callers) == 2
