"""Short writes on the event loop on PostgreSQL, and long batches taking turns (LIM-3,
USE-1; db/loop_writes.py, api/context.py `Api.write`).

- A session start (`brief`) is written on the event loop's own thread; while it waits
  for a lock another transaction holds (here `LOCK TABLE events` in a thread), the loop
  serves other coroutines, and once the lock is let go the start is counted once.
- A start with no other short write under way is written in a thread instead (alone, a
  thread's blocking waits cost less CPU); one beside it on the loop.
- A start whose caller is cancelled while it waits is still written to its end, once (as
  a write in a thread is), and gives its place back.
- A connection the server ended, opened again for a write on the loop, is opened in a
  thread; when the pool has no idle connection (threads hold them all, or the engine
  never connected), the write is done in a thread and the loop never stops.
- The loop watches a write's socket only while it writes: not after it committed,
  failed, or lost its connection; a write waits to send on a socket numbered past
  1,024, and a wait with a timeout in a write leaves the next one answered.
- Long batches of events (`heavy`) of one process take turns on PostgreSQL: the second
  begins only after the first ended.
- `Places`: past its size a taker waits on its loop; a place given back goes to the
  first waiter, and a waiter cancelled passes it on.
On SQLite the short writes run inline on the loop (tests/api/test_metering.py)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tabkeeper.api.context import Api
from tabkeeper.db import loop_writes
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.loop_writes import LOOP_WRITERS, Places, write_on_the_loop, writes_on_the_loop
from tabkeeper.services.access import Caller
from tabkeeper.services.context import Billing
from tabkeeper.services.session_starts import start_session_by_code
from tabkeeper.settings import Settings
from tests.api.billing import subscribe
from tests.api.conftest import ApiWorld
from tests.api.test_database_restart import count_backends, end_other_connections
from tests.api.test_metering import _world, used
from tests.browser import run_async

WAIT = 30.0
"""Seconds a step may wait for another before the test fails (never reached when right)."""


@pytest.fixture
def metered(engine: Engine) -> ApiWorld:
    """acme on Team (tests/api/test_metering.py's world)."""
    api = _world(engine)
    subscribe(api, api.member("acme", "alice"), "acme", "team")
    return api


@pytest.fixture(autouse=True)
def _alone_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone short write on the loop too (a lone write goes to a thread: tested below)."""
    monkeypatch.setattr(loop_writes, "LONE_WRITES_IN_A_THREAD", False)


def _postgresql(engine: Engine) -> None:
    """Skip on SQLite; on PostgreSQL leave 3 idle connections in the engine's pool (a
    write on the loop takes an idle one or goes to a thread)."""
    if not writes_on_the_loop(engine):
        assert engine.dialect.name == "sqlite"
        pytest.skip("short writes on the loop through psycopg: PostgreSQL")
    taken = [engine.connect() for _ in range(3)]
    for connection in taken:
        connection.close()


def _api(metered: ApiWorld, engine: Engine) -> Api:
    world = metered.world
    return Api(Settings(database_url="sqlite://"), engine, world.clock, world.provider,
               world.store)  # fmt: skip


def _starter(conversation: str) -> Callable[[Billing], int]:
    def start(b: Billing) -> int:
        decision = start_session_by_code(b, "acme", "bot", conversation, visible=lambda _: True)
        assert decision.allowed
        return threading.get_ident()

    return start


@contextmanager
def _events_locked(engine: Engine) -> Iterator[threading.Event]:
    """`LOCK TABLE events` held by a transaction in a thread until the event yielded is
    set (or WAIT seconds pass): any insert of an event waits for it meanwhile."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as connection:
            connection.execute(text("LOCK TABLE events IN SHARE MODE"))
            locked.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(WAIT)
        yield release
    finally:
        release.set()
        holder.join(WAIT)


def _waiting_for_a_lock(engine: Engine) -> int:
    """How many backends of the test database wait for a lock now."""
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        return count_backends(admin, "wait_event_type = 'Lock'")
    finally:
        admin.dispose()


async def _until_a_write_waits(engine: Engine, writes: int = 1) -> None:
    """Return once `writes` backends wait for a lock, looking from a thread (the loop
    free)."""
    for _ in range(int(WAIT / 0.02)):
        if await asyncio.to_thread(_waiting_for_a_lock, engine) >= writes:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no write waited for the lock")


def test_lim3_a_start_waits_for_a_lock_on_the_loop_while_the_loop_serves_others(
    metered: ApiWorld, engine: Engine
) -> None:
    """LIM-3, PostgreSQL: the start is written on the loop's thread; while it waits for the
    events table's lock the loop goes on (here it looks for the waiting backend and then
    lets the lock go: were the loop blocked by the write, neither could happen and the
    start would end only after WAIT, failing below); counted once."""
    _postgresql(engine)
    api = _api(metered, engine)
    served: list[str] = []

    async def run(release: threading.Event) -> tuple[int, int]:
        write = asyncio.ensure_future(
            api.write(Caller(metered.world.platform_id), _starter("held"), brief=True)
        )
        await _until_a_write_waits(engine)
        served.append("looked while the start waited")
        assert not write.done()
        release.set()
        written_in = await write
        return threading.get_ident(), written_in

    with _events_locked(engine) as release:
        loop_thread, written_in = run_async(run(release))
    assert written_in == loop_thread
    assert served == ["looked while the start waited"]
    assert used(metered.platform)["sessions"] == "1"


def test_lim3_a_lone_start_is_written_in_a_thread_and_one_beside_it_on_the_loop(
    metered: ApiWorld, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIM-3, PostgreSQL (`LONE_WRITES_IN_A_THREAD`): a start with no other short write
    under way is written in a thread (alone, a thread's blocking waits cost less); a
    second start while the first waits for a lock is written on the loop; each counted
    once."""
    _postgresql(engine)
    monkeypatch.setattr(loop_writes, "LONE_WRITES_IN_A_THREAD", True)
    api = _api(metered, engine)
    caller = Caller(metered.world.platform_id)

    async def run(release: threading.Event) -> tuple[int, int, int]:
        lone = asyncio.ensure_future(api.write(caller, _starter("lone"), brief=True))
        await _until_a_write_waits(engine)
        beside = asyncio.ensure_future(api.write(caller, _starter("beside"), brief=True))
        await _until_a_write_waits(engine, writes=2)
        release.set()
        return threading.get_ident(), await lone, await beside

    with _events_locked(engine) as release:
        loop_thread, lone_in, beside_in = run_async(run(release))
    assert lone_in != loop_thread and beside_in == loop_thread
    assert used(metered.platform)["sessions"] == "2"


def test_lim3_a_start_begun_on_the_loop_ends_though_its_caller_is_cancelled(
    metered: ApiWorld, engine: Engine
) -> None:
    """LIM-3, PostgreSQL: the caller cancelled while its start waits for a lock (a client
    gone): the start is still written, once, when the lock is let go, and its place on the
    loop is given back."""
    _postgresql(engine)
    api = _api(metered, engine)
    writes = loop_writes._writers[engine]

    async def run(release: threading.Event) -> bool:
        write = asyncio.ensure_future(
            api.write(Caller(metered.world.platform_id), _starter("gone"), brief=True)
        )
        await _until_a_write_waits(engine)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        release.set()
        for _ in range(int(WAIT / 0.01)):  # the start ends on its own
            if writes.places.free == LOOP_WRITERS and writes.under_way == 0:
                return True
            await asyncio.sleep(0.01)
        return False

    with _events_locked(engine) as release:
        assert run_async(run(release))
    assert used(metered.platform)["sessions"] == "1"


def test_lim3_ops1_a_connection_opened_again_for_a_write_on_the_loop_is_opened_in_a_thread(
    metered: ApiWorld, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIM-3, OPS-1, PostgreSQL: the server ended the pool's connections; the start takes
    an idle one, finds it ended before use and opens it again in a thread (connecting may
    take up to the connect timeout; the loop must not wait for it); the start is written
    on the loop."""
    _postgresql(engine)
    api = _api(metered, engine)
    assert end_other_connections(engine)
    opened_in: list[int] = []
    connect = loop_writes.LoopAwareConnection.connect

    def opened(*arguments: Any, **options: Any) -> Any:
        opened_in.append(threading.get_ident())
        return connect(*arguments, **options)

    monkeypatch.setattr(loop_writes.LoopAwareConnection, "connect", opened)

    async def run() -> tuple[int, int]:
        written_in = await api.write(
            Caller(metered.world.platform_id), _starter("fresh"), brief=True
        )
        return threading.get_ident(), written_in

    loop_thread, written_in = run_async(run())
    assert written_in == loop_thread
    assert opened_in and loop_thread not in opened_in
    assert used(metered.platform)["sessions"] == "1"


def test_lim3_writes_on_the_loop_of_a_new_engine_open_its_first_connections_in_threads(
    engine: Engine,
) -> None:
    """LIM-3, PostgreSQL: three writes at once on the loop of an engine that never
    connected: the pool has no idle connection, so each is done in a thread (SQLAlchemy
    sets up the first connection under a lock of its own: a write suspended on the loop
    holding it would stop the loop, and the next write with it, for good); all end."""
    _postgresql(engine)
    fresh = make_engine(engine.url.render_as_string(hide_password=False))
    done: list[int] = []

    def write() -> int:
        with transaction(fresh) as session:
            return int(session.execute(text("SELECT 1")).scalar_one())

    async def run() -> None:
        done.extend(await asyncio.gather(*(write_on_the_loop(fresh, write) for _ in range(3))))

    runner = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    try:
        runner.start()
        runner.join(WAIT)
        assert not runner.is_alive(), "the loop stopped"
        assert done == [1, 1, 1]
    finally:
        fresh.dispose()


def test_lim3_a_start_goes_to_a_thread_when_the_pool_has_no_connection_to_give(
    metered: ApiWorld, engine: Engine
) -> None:
    """LIM-3, PostgreSQL: with every connection of the pool taken (5 and 10 more, held by
    the test as threads would), a start is handed to a thread, where it waits for one;
    the loop goes on and gives one back 0.05 s later (were the start waiting for the
    pool on the loop, that could not happen: the pool's 30 s timeout would fail it)."""
    _postgresql(engine)
    api = _api(metered, engine)
    held = [engine.connect() for _ in range(15)]

    async def run() -> tuple[int, int]:
        asyncio.get_running_loop().call_later(0.05, held.pop().close)
        written_in = await api.write(
            Caller(metered.world.platform_id), _starter("crowded"), brief=True
        )
        return threading.get_ident(), written_in

    try:
        loop_thread, written_in = run_async(run())
    finally:
        for connection in held:
            connection.close()
    assert written_in != loop_thread
    assert used(metered.platform)["sessions"] == "1"


def _watched(loop: asyncio.AbstractEventLoop) -> set[int]:
    """The file descriptors the loop watches for reading or writing now."""
    return set(loop._selector.get_map())  # type: ignore[attr-defined]


def test_lim3_a_write_on_the_loop_watches_its_socket_only_while_it_writes(
    metered: ApiWorld, engine: Engine
) -> None:
    """LIM-3, PostgreSQL: the loop watches a write's socket from its first wait to the
    end of its transaction (one reader a write, not one a round trip), and no longer once
    the connection is back in the pool, whether the write was committed, failed on a
    statement (`SELECT 1/0`: rolled back, the connection kept and used again), or lost its
    connection (the server ended it: the socket unwatched before it was closed, the next
    write on a new connection). Five starts at once on the loop each count once."""
    _postgresql(engine)
    api = _api(metered, engine)
    seen: list[tuple[str, int, bool]] = []

    def statement(sql: str, name: str) -> Callable[[], int]:
        def work() -> int:
            with transaction(engine) as session:
                session.execute(text("SELECT 1"))
                driver = session.connection().connection.driver_connection
                fileno = driver.pgconn.socket
                loop = asyncio.get_running_loop()
                seen.append((name, fileno, fileno in _watched(loop)))
                return int(session.execute(text(sql)).scalar_one())

        return work

    async def run() -> tuple[set[int], set[int]]:
        loop = asyncio.get_running_loop()
        before = _watched(loop)
        assert await write_on_the_loop(engine, statement("SELECT 2", "committed")) == 2
        with pytest.raises(Exception, match="division by zero"):
            await write_on_the_loop(engine, statement("SELECT 1/0", "failed"))
        with pytest.raises(Exception, match="terminat"):
            await write_on_the_loop(
                engine, statement("SELECT pg_terminate_backend(pg_backend_pid())", "ended")
            )
        assert await write_on_the_loop(engine, statement("SELECT 3", "after")) == 3
        caller = Caller(metered.world.platform_id)
        await asyncio.gather(*(api.write(caller, _starter(f"c{i}"), brief=True) for i in range(5)))
        return before, _watched(loop)

    before, after = run_async(run())
    assert [(name, watched) for name, _, watched in seen] == [
        ("committed", True), ("failed", True), ("ended", True), ("after", True)
    ]  # fmt: skip
    assert after == before
    assert used(metered.platform)["sessions"] == "5"


def test_lim3_a_write_on_the_loop_waits_to_send_on_any_descriptor_and_after_a_timed_wait(
    engine: Engine,
) -> None:
    """LIM-3, PostgreSQL: with over 1,024 files open (a busy server), a write on the loop
    whose connection's socket is numbered past 1,024 sends a statement larger than the
    socket's buffer (8 MB: it waits for the socket to take more) and an executemany
    (psycopg's pipeline: it waits for reading and writing at once); a wait with a timeout
    inside a write (`notifies`) leaves the next statement's wait answered."""
    _postgresql(engine)
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    fresh = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        for connection in [fresh.connect() for _ in range(3)]:
            connection.close()

        def write() -> tuple[int, int, int]:
            with transaction(fresh) as session:
                driver = session.connection().connection.driver_connection
                size = session.execute(text("SELECT length(:s)"), {"s": "x" * 8_000_000})
                with driver.cursor() as cursor:
                    cursor.executemany("SELECT %s::int", [(i,) for i in range(50)])
                list(driver.notifies(timeout=0.05))
                after = session.execute(text("SELECT 2")).scalar_one()
                return driver.pgconn.socket, int(size.scalar_one()), int(after)

        async def run() -> tuple[int, int, int]:
            return await asyncio.wait_for(write_on_the_loop(fresh, write), WAIT)

        fileno, size, after = run_async(run())
        assert fileno > 1024 and size == 8_000_000 and after == 2
    finally:
        fresh.dispose()
        for fileno in held:
            os.close(fileno)


def test_use1_long_batches_of_one_process_take_turns_on_postgresql(
    metered: ApiWorld, engine: Engine
) -> None:
    """USE-1, PostgreSQL: two heavy writes (batches of more than 10 events) sent at once:
    the second begins only once the first has ended (batches are bound by the
    interpreter; two at once finish no sooner, and crowd the event loop out)."""
    _postgresql(engine)
    api = _api(metered, engine)
    caller = Caller(metered.world.platform_id)
    steps: list[str] = []
    first_in = threading.Event()

    def first(_b: Billing) -> None:
        steps.append("first begins")
        first_in.set()
        threading.Event().wait(0.2)  # time for the second to come, were it let in
        steps.append("first ends")

    def second(_b: Billing) -> None:
        steps.append("second begins")

    async def run() -> None:
        one = asyncio.ensure_future(api.write(caller, first, heavy=True))
        assert await asyncio.to_thread(first_in.wait, WAIT)
        await api.write(caller, second, heavy=True)
        await one

    run_async(run())
    assert steps == ["first begins", "first ends", "second begins"]


def test_places_past_their_size_wait_and_are_handed_on() -> None:
    """A second taker of one place waits until it is given back; a waiter cancelled
    before the place reached it, or once it had, passes it to the next; none is lost
    or made twice."""

    async def run() -> list[str]:
        places = Places(1)
        steps: list[str] = []
        await places.take()

        async def taker(name: str) -> None:
            await places.take()
            steps.append(name)

        early = asyncio.ensure_future(taker("cancelled before"))
        late = asyncio.ensure_future(taker("cancelled once handed the place"))
        last = asyncio.ensure_future(taker("last"))
        await asyncio.sleep(0)
        assert places.free == 0 and not steps
        places.give_back()  # handed to the first waiter...
        early.cancel()  # ...cancelled before it ran: on to the next
        await asyncio.sleep(0)  # the hand-over to the second has run...
        late.cancel()  # ...and it is cancelled before it resumes: on to the last
        await asyncio.wait_for(last, WAIT)
        assert early.cancelled() and late.cancelled()
        places.give_back()
        assert places.free == 1
        return steps

    assert run_async(run()) == ["last"]
