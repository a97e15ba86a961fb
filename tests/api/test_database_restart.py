"""A PostgreSQL connection dropped by the server (a restart, a failover, an idle
timeout) costs at most one 503 `database_unavailable` with Retry-After, never a 500 and
never a second failure (OPS-1, OPS-5). The pool looks at a connection before each use
without a round trip (db/engine.py `_look_before_use`): one the server has ended is
replaced before the transaction starts, so usually not even the one 503 is seen; it is
seen only when the server ends the connection between that look and the first statement,
and not even then on the hot path (the check, events, session starts), whose work runs
once more on a fresh connection when it lost its connection before the commit.
While the database cannot be reached at all, every answer is 503 with Retry-After."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.services.access import create_api_key
from tabkeeper.settings import Settings
from tests.api.conftest import make_api_world
from tests.integration.conftest import make_world


def end_other_connections(engine: Engine, *, wait: bool = True) -> int:
    """PostgreSQL ends every other connection to the test database (as a restart or a
    failover would; `wait`: until each backend is gone); how many it ended."""
    ended_by = (
        "count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))"
        if wait
        else ("count(pg_terminate_backend(pid))")
    )
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        ended = connection.execute(
            text(
                f"SELECT {ended_by} FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    return int(ended or 0)


def count_backends(admin: Engine, condition: str) -> int:
    """How many backends of the test database (`admin`'s) meet the SQL `condition` on
    pg_stat_activity now."""
    with admin.connect() as connection:
        found = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                f" WHERE datname = current_database() AND {condition}"
            )
        ).scalar()
    return int(found or 0)


def test_dropped_connections_cost_one_retryable_answer(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops its connections: PostgreSQL")
    api = make_api_world(engine)
    api.world.organization("acme")
    assert api.platform.get("/v1/organizations").status_code == 200
    assert end_other_connections(engine, wait=False)
    first = api.platform.get("/v1/organizations")
    if first.status_code != 200:  # the backend ended after the pool looked: one retry
        assert first.status_code == 503, first.text
        assert first.json()["code"] == "database_unavailable"
        assert first.headers["Retry-After"] == "1"
    again = api.platform.get("/v1/organizations")
    assert again.status_code == 200, again.text
    assert [o["code"] for o in again.json()["data"]] == ["acme"]


def test_ops1_a_connection_the_server_ended_is_replaced_before_use(engine: Engine) -> None:
    """OPS-1, OPS-5: once the server has ended the pooled connections (here
    pg_terminate_backend, waiting until each backend is gone), the very next request
    answers 200: the pool sees the ended connection at checkout, without a round trip,
    and opens a fresh one (the retry of a transaction that failed before doing anything)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops its connections: PostgreSQL")
    api = make_api_world(engine)
    api.world.organization("acme")
    assert api.platform.get("/v1/organizations").status_code == 200
    assert end_other_connections(engine)
    first = api.platform.get("/v1/organizations")
    assert first.status_code == 200, first.text
    assert [o["code"] for o in first.json()["data"]] == ["acme"]


class _Cable:
    """A TCP relay between the API's engine and PostgreSQL that the test can pull out
    (every connection cut, new ones refused: the database is gone) and plug back in."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.plug()

    def plug(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def pull(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):  # wakes the thread waiting in accept (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)


def test_ops5_while_the_database_is_gone_answers_are_503_and_ready_says_so(
    engine: Engine,
) -> None:
    """OPS-5: with the database unreachable (connections cut, new ones refused)
    /health/ready and the API answer 503 problem+json with Retry-After, never a 500 and
    never a hang; /health/live stays 200. Once it is back, the next requests answer 200."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a database across the network: PostgreSQL")
    world = make_world(engine)
    world.organization("acme")
    with transaction(engine) as session:
        _, key = create_api_key(session, world.platform_id, "tests", world.clock.now())
    cable = _Cable(engine.url.host or "127.0.0.1", engine.url.port or 5432)
    relayed = make_engine(engine.url.set(host="127.0.0.1", port=cable.port).render_as_string(
        hide_password=False))  # fmt: skip
    app = create_app(
        Settings(database_url="sqlite://"), relayed,
        clock=world.clock, provider=world.provider, store=world.store,
    )  # fmt: skip
    client = TestClient(app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        assert client.get("/health/ready").status_code == 200
        assert client.get("/v1/organizations", headers=auth).status_code == 200
        cable.pull()
        for path in ("/health/ready", "/v1/organizations", "/v1/organizations/acme"):
            answer = client.get(path, headers=auth)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["code"] == "database_unavailable"
        assert client.get("/health/live").status_code == 200
        cable.plug()
        assert client.get("/health/ready").status_code == 200
        back = client.get("/v1/organizations", headers=auth)
        assert back.status_code == 200, back.text
    finally:
        cable.pull()
        relayed.dispose()


def test_ops1_work_that_lost_its_connection_before_the_commit_runs_once_more(
    engine: Engine,
) -> None:
    """OPS-1: the check (a read) and an events batch (a write) whose connection the
    server ends right after the pool handed it out, so that the first statement fails:
    the work runs once more on a fresh connection and the client sees 200, not 503."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops its connections: PostgreSQL")
    api = make_api_world(engine)
    api.world.organization("acme")
    app_engine = api.platform.http.app.state.api.engine  # type: ignore[attr-defined]
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    armed: list[bool] = []

    @event.listens_for(app_engine, "checkout")
    def _end_it(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if armed:
            armed.clear()
            with admin.connect() as connection:
                pid = dbapi_connection.info.backend_pid
                connection.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})

    try:
        check = {"organization": "acme", "action": "start_session"}
        assert api.platform.post("/v1/check", check).status_code == 200
        armed.append(True)
        answer = api.platform.post("/v1/check", check)
        assert answer.status_code == 200, answer.text
        assert not armed
        batch = {"events": [{"id": "e1", "type": "call.ended", "org": "acme", "agent": "bot"}]}
        armed.append(True)
        answer = api.platform.post("/v1/events", batch)
        assert answer.status_code == 200, answer.text
        assert not armed
    finally:
        event.remove(app_engine, "checkout", _end_it)
        admin.dispose()
