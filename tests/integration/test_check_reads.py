"""The real-time check reads, and reads once (LIM-1, LIM-2, USE-6): the account with its
subscription, credit balance and the current period's counters in one statement, in a
read-only transaction that never waits for a writer on SQLite; a balance with something
due (CRD-2) is brought up to date in a writing transaction instead."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from tabkeeper.db.engine import is_sqlite, read_transaction, transaction
from tabkeeper.db.tables import Organization
from tabkeeper.domain.decisions import Decision, Reason
from tabkeeper.domain.errors import NotFound
from tabkeeper.services.context import billing_for
from tabkeeper.services.limits import CreditsDue, check, check_by_code
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.session_starts import start_session
from tests.integration.conftest import World, make_world, statements_sent
from tests.integration.test_credits import credits_world


def _everyone(_organization: object) -> bool:
    return True


def _read_check(world: World, action: str, feature: str | None = None) -> Decision:
    with read_transaction(world.engine) as session:
        b = billing_for(session, world.platform_id, world.clock.now(), world.store)
        return check_by_code(b, "acme", action, feature, visible=_everyone, refresh=False)


def _active(engine: Engine) -> World:
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.advance(timedelta(hours=1))
    with world.billing() as b:
        for i in range(3):
            assert start_session(b, organization_by_code(b, "acme"), "a1", f"c{i}").allowed
    return world


@pytest.mark.parametrize("action", ["start_session", "use_ai"])
def test_check_is_one_statement(engine: Engine, action: str) -> None:
    """LIM-1/USE-6: the check sends one statement (the account, its balance row and its
    counters), whatever the catalog's number of meters; it answers what the writing
    path answers."""
    world = _active(engine)
    feature = "summary" if action == "use_ai" else None
    _read_check(world, action, feature)  # the catalog version is cached per process
    with statements_sent(engine) as sent:
        decision = _read_check(world, action, feature)
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, sent
    assert len(sent) <= 2, sent  # the SELECT, and on SQLite the deferred BEGIN
    with world.billing() as b:
        assert check(b, organization_by_code(b, "acme"), action, feature) == decision


def test_check_numbers_come_from_the_counters(engine: Engine) -> None:
    """USE-6: three sessions started show as three used in the check's numbers."""
    world = _active(engine)
    decision = _read_check(world, "start_session")
    assert decision.allowed
    with world.billing() as b:
        writing = check(b, organization_by_code(b, "acme"), "start_session")
    assert writing.numbers == decision.numbers


def test_unknown_or_hidden_organization_is_not_found(engine: Engine) -> None:
    """ACL-3: an organization the caller may not see is 404 like an unknown one. Tried:
    an unknown code, an empty code, a known code the caller may not see."""
    world = _active(engine)
    with read_transaction(world.engine) as session:
        b = billing_for(session, world.platform_id, world.clock.now(), world.store)
        for code in ("nobody", ""):
            with pytest.raises(NotFound):
                check_by_code(b, code, "start_session", visible=_everyone, refresh=False)
        with pytest.raises(NotFound):
            check_by_code(b, "acme", "start_session", visible=lambda _o: False, refresh=False)


def test_due_credits_are_refreshed_in_a_writing_transaction(engine: Engine) -> None:
    """CRD-2/CRD-3: a period whose included credits are due is not answered from the
    stale balance row: the read-only check says CreditsDue, the writing check grants
    them and answers, and from then on the read-only check answers the same."""
    world = credits_world(engine)
    world.organization("acme")
    world.subscribe("acme", "plus")
    with world.billing() as b:
        assert check(b, organization_by_code(b, "acme"), "use_ai", "kb_answer").allowed
    world.clock.advance(timedelta(days=40))
    world.worker().run_until(world.clock.now())
    with pytest.raises(CreditsDue):
        _read_check(world, "use_ai", "kb_answer")
    with world.billing() as b:
        decision = check_by_code(b, "acme", "use_ai", "kb_answer", visible=_everyone)
    assert decision.allowed
    assert _read_check(world, "use_ai", "kb_answer") == decision


def test_check_never_waits_for_a_writer(engine: Engine) -> None:
    """LIM-1: on SQLite the check answers while another transaction holds the write lock
    (WAL readers read a snapshot); before, every transaction took the lock first."""
    if not is_sqlite(engine):
        pytest.skip("SQLite's write lock")
    world = _active(engine)
    holding, answered = threading.Event(), threading.Event()

    def writer() -> None:
        with transaction(engine) as session:
            session.execute(text("UPDATE organizations SET name = name"))
            session.get(Organization, 1)
            holding.set()
            answered.wait(timeout=60)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(timeout=60)
    try:
        decision = _read_check(world, "start_session")
        still_locked = not answered.is_set() and thread.is_alive()
    finally:
        answered.set()
        thread.join()
    assert still_locked
    assert decision.reason is Reason.OK


def test_a_one_statement_read_is_one_round_trip_on_postgresql(engine: Engine) -> None:
    """LIM-1: the check's read (`read_transaction(one_statement=True)`) sends its one
    statement alone on PostgreSQL: no transaction is open around it (autocommit, no
    BEGIN/COMMIT), and it sees what is committed. On SQLite it is the plain read-only
    transaction (a deferred BEGIN reading one snapshot)."""
    world = _active(engine)
    with read_transaction(engine, one_statement=True) as session:
        b = billing_for(session, world.platform_id, world.clock.now(), world.store)
        decision = check_by_code(b, "acme", "start_session", visible=_everyone, refresh=False)
        driver = session.connection().connection.driver_connection
        if is_sqlite(engine):
            assert driver.in_transaction
        else:
            from psycopg.pq import TransactionStatus

            assert driver.autocommit
            assert driver.info.transaction_status == TransactionStatus.IDLE
    assert decision == _read_check(world, "start_session")
    with read_transaction(engine) as session:  # the plain read after it is a transaction
        session.execute(text("SELECT 1"))
        driver = session.connection().connection.driver_connection
        if not is_sqlite(engine):
            assert not driver.autocommit
