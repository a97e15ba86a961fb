"""LIM-7 (with LIM-3, USE-4): on an answered-only plan a started session with no reply yet
holds a place under the session limit until its window closes; on SQLite and PostgreSQL.

The plan "answered" bills only windows the end user replied in (USE-4). Before LIM-7, 400
concurrent starts with a limit of 7 were all admitted (a start reserved nothing); now a
start holds a place: 50 concurrent starts with a limit of 5 admit exactly 5. A reply turns
the held place into the billed session (counted once, not twice); a window that closes
unanswered (24 h after its start) frees its place.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from tabkeeper.db.engine import is_sqlite, transaction
from tabkeeper.db.tables import Platform
from tabkeeper.domain.decisions import Decision
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.limits import check
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.session_starts import (
    set_session_limit,
    start_session,
    start_session_by_code,
)
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import (
    CATALOG,
    World,
    all_at_once,
    make_world,
    statements_sent,
)

ANSWERED: dict[str, Any] = {
    **CATALOG,
    "plans": {
        **CATALOG["plans"],
        "answered": {"name": "Answered", "price": "30.00", "includes": {"sessions": 1000},
                     "limits": {"agents": 100, "seats": 5}, "rank": 3, "answered_only": True},
    },
}  # fmt: skip


def _world(engine: Engine, limit: int) -> World:
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, ANSWERED, world.clock.now())
    world.organization("acme")
    world.subscribe("acme", "answered")
    world.clock.advance(timedelta(hours=1))
    with world.billing() as b:
        set_session_limit(b, organization_by_code(b, "acme"), limit)
    return world


def _start(world: World, conversation: str, agent: str = "a1") -> Decision:
    with world.billing() as b:
        return start_session(b, organization_by_code(b, "acme"), agent, conversation)


def _check(world: World) -> Decision:
    with world.billing() as b:
        return check(b, organization_by_code(b, "acme"), "start_session")


def _reply(world: World, conversation: str) -> None:
    event = {"id": f"reply-{conversation}-{world.clock.now().isoformat()}", "type": "message",
             "org": "acme", "agent": "a1", "conversation": conversation,
             "properties": {"direction": "inbound"}}  # fmt: skip
    with world.billing() as b:
        assert ingest_batch(b, [event]).accepted == 1


def _billed(world: World) -> tuple[int, int]:
    """(billable sessions by the counters, by a recount of the stored events)."""
    counted, recounted = world.usage_and_recount("acme")["sessions"]
    return int(counted), int(recounted)


def test_lim7_50_concurrent_answered_only_starts_with_a_limit_of_5_admit_exactly_5(
    engine: Engine,
) -> None:
    """LIM-7, LIM-3: 50 starts at once, no reply yet, limit 5: exactly 5 admitted; the
    check then refuses (used 5 = 0 answered + 5 held); nothing is billed yet."""
    world = _world(engine, 5)
    admitted: list[bool] = [False] * 50

    def run(index: int) -> None:
        admitted[index] = _start(world, f"c-{index}", agent=f"a{index}").allowed

    all_at_once(50, run)
    assert admitted.count(True) == 5
    decision = _check(world)
    assert not decision.allowed
    assert decision.reason == "session_limit_reached"
    assert decision.numbers["used"] == 5
    assert _billed(world) == (0, 0)


def test_lim7_a_reply_turns_the_held_place_into_the_billed_session(engine: Engine) -> None:
    """LIM-7, USE-4: a held place that gets a reply is the billed session, counted once:
    with a limit of 2, k1 and k2 held, k1 answered: still 2 used (1 billed + 1 held), k3
    refused; the start answers with the numbers after its reservation."""
    world = _world(engine, 2)
    first = _start(world, "k1")
    assert first.allowed
    assert dict(first.numbers) == {"used": 1, "limit": 2, "remaining": 1}
    assert dict(_start(world, "k2").numbers) == {"used": 2, "limit": 2, "remaining": 0}
    world.clock.advance(timedelta(hours=2))
    _reply(world, "k1")
    assert _billed(world) == (1, 1)
    assert _check(world).numbers["used"] == 2
    assert not _start(world, "k3").allowed
    assert _start(world, "k1").allowed  # its window is open: no new session


def test_lim7_a_window_that_closes_unanswered_frees_its_place(engine: Engine) -> None:
    """LIM-7: k1 (answered) and k2 (no reply) fill a limit of 2; 24 h after k2's start its
    window closes unanswered and frees its place: k3 is admitted, k4 is not; k2 is never
    billed."""
    world = _world(engine, 2)
    assert _start(world, "k1").allowed
    assert _start(world, "k2").allowed
    _reply(world, "k1")
    world.clock.advance(timedelta(hours=23, minutes=59))
    assert not _start(world, "k3").allowed  # k2's window is still open
    world.clock.advance(timedelta(minutes=1))
    assert _check(world).numbers["used"] == 1
    assert _start(world, "k3").allowed
    assert not _start(world, "k4").allowed
    assert _billed(world) == (1, 1)


def test_lim7_concurrent_starts_after_places_were_freed_still_never_overshoot(
    engine: Engine,
) -> None:
    """LIM-7, LIM-3: with 3 windows closed unanswered earlier in the period and a limit of
    5, 40 concurrent starts admit exactly 5 (the closed windows raise the counter's cap,
    never the number admitted)."""
    world = _world(engine, 5)
    for conversation in ("old-1", "old-2", "old-3"):
        assert _start(world, conversation).allowed
    world.clock.advance(timedelta(hours=25))
    admitted: list[bool] = [False] * 40

    def run(index: int) -> None:
        admitted[index] = _start(world, f"c-{index}", agent=f"a{index}").allowed

    all_at_once(40, run)
    assert admitted.count(True) == 5
    assert _check(world).numbers["used"] == 5


def test_lim7_an_answered_only_start_sends_what_a_capped_start_sends(engine: Engine) -> None:
    """LIM-7, LIM-3: with a limit, an answered-only start is the statements of any capped
    start (tests/integration/test_hot_path_statements.py): one SELECT (the account, its
    counters, the conversation and the places held), the conditional counter upsert, the
    event, the conversation written back, the other counters; on PostgreSQL the
    conversation made and locked first. 5 on SQLite, 6 on PostgreSQL."""
    world = _world(engine, 100)
    assert _start(world, "warm-up").allowed
    with statements_sent(engine) as sent, world.billing() as b:
        assert start_session_by_code(b, "acme", "a1", "k1", visible=lambda _: True).allowed
    selects = [s for s in sent if s.startswith("SELECT")]
    assert len(selects) == 1, sent
    assert "held_since" in selects[0]
    assert len([s for s in sent if s.startswith("INSERT INTO usage_counters ")]) == 2, sent
    assert len(sent) == (5 if is_sqlite(engine) else 6), sent
