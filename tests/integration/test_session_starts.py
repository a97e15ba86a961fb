"""The real-time check under load (LIM-3): concurrent session starts never overshoot a cap,
on SQLite and PostgreSQL; and the session limit (LIM-4)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.services.context import billing
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.session_starts import (
    reset_session_limit,
    set_session_limit,
    start_session,
)
from tests.integration.conftest import World, all_at_once, make_world


def _start(world: World, conversation: str, agent: str = "a1") -> bool:
    with world.billing() as b:
        return start_session(b, organization_by_code(b, "acme"), agent, conversation).allowed


def _limited(engine: Engine, limit: int, used: int) -> World:
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.advance(timedelta(hours=1))
    with world.billing() as b:
        set_session_limit(b, organization_by_code(b, "acme"), limit)
    for i in range(used):
        assert _start(world, f"before-{i}")
    return world


@pytest.mark.parametrize(("limit", "used", "starts"), [(10, 9, 50), (150, 50, 500)])
def test_concurrent_starts_never_overshoot(
    engine: Engine, limit: int, used: int, starts: int
) -> None:
    """LIM-3: with 1 session left and 50 agents starting at once exactly 1 is admitted;
    with 100 left and 500 starts, exactly 100."""
    world = _limited(engine, limit, used)
    admitted: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(min(starts, 25))

    def run(worker: int) -> None:
        try:
            for i in range(worker, starts, 25):
                if i < 25:
                    gate.wait()
                result = _start(world, f"c-{i}", agent=f"a{worker}")
                with lock:
                    admitted.append(result)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(min(starts, 25))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(admitted) == starts
    assert admitted.count(True) == limit - used
    with world.billing() as b:
        from tabkeeper.services.limits import check

        decision = check(b, organization_by_code(b, "acme"), "start_session")
    assert not decision.allowed
    assert decision.reason == "session_limit_reached"
    assert decision.numbers["used"] == limit


def test_a_running_conversation_is_not_a_new_session(world: World) -> None:
    """USE-3, LIM-4: at the cap, a conversation whose 24-hour window is open goes on; a new
    one is refused; the next period starts afresh."""
    world.organization("acme")
    world.subscribe("acme", "basic")
    with world.billing() as b:
        set_session_limit(b, organization_by_code(b, "acme"), 1)
    assert _start(world, "k1")
    world.clock.advance(timedelta(hours=3))
    assert _start(world, "k1")  # same window
    assert not _start(world, "k2")
    world.clock.advance(timedelta(hours=22))
    assert not _start(world, "k1")  # its window closed: a new billable session


def test_session_limit_is_a_whole_number_above_zero(world: World) -> None:
    """LIM-4: bad limits tried: 0, -1, 2.5, "10", True; nothing changes; reset goes back
    to the plan's base."""
    world.organization("acme")
    world.subscribe("acme", "basic")
    for bad in (0, -1, 2.5, "10", True):
        with (
            pytest.raises(InvalidInput, match="whole number greater than zero"),
            world.billing() as b,
        ):
            set_session_limit(b, organization_by_code(b, "acme"), bad)
    with world.billing() as b:
        assert set_session_limit(b, organization_by_code(b, "acme"), 5) == 5
    with world.billing() as b:
        assert reset_session_limit(b, organization_by_code(b, "acme")) is None


def test_no_session_limit_on_the_trial(engine: Engine) -> None:
    """LIM-4: the Session limit card is for paid plans, not the trial."""
    world = make_world(engine, {"trial": {"days": 14, "sessions": 50, "plan": "trial"}})
    world.organization("acme")
    with pytest.raises(Refused, match="paid plans") as raised, world.billing() as b:
        set_session_limit(b, organization_by_code(b, "acme"), 10)
    assert raised.value.code == "not_on_trial"


def test_use3_concurrent_starts_in_one_conversation_open_one_session(engine: Engine) -> None:
    """USE-3, LIM-3: 20 agents start the same new conversation at once, each at its own
    instant within a minute (in whatever order they get through): all are admitted, and
    they open one billable session, not one each (on PostgreSQL the conversation's row
    is locked before it is counted); the counter equals the recount."""
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.advance(timedelta(hours=1))
    start = world.clock.now()
    admitted: list[bool] = []

    def run(worker: int) -> None:
        at = start + timedelta(seconds=3 * worker)
        with billing(world.engine, world.platform_id, at, world.store) as b:
            organization = organization_by_code(b, "acme")
            admitted.append(start_session(b, organization, f"a{worker}", "k1").allowed)

    all_at_once(20, run)  # fails with the first error a start raised
    assert admitted == [True] * 20
    assert world.usage_and_recount("acme")["sessions"] == (1, 1)
