"""48 clients at once over real HTTP on SQLite (the default): events, checks and session
starts mixed, a bounded number of requests. No request fails with a server error and
none says "database is locked" (LIM-1, LIM-3, USE-1: every event and admitted session
counted once)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.migrate import upgrade
from tabkeeper.db.tables import UsageEventRow
from tests.integration.live_server import LiveServer, Prepared, prepare, send

CLIENTS = 48
REQUESTS_EACH = 12
EVENTS_PER_BATCH = 10


def _client(server: LiveServer, prepared: Prepared, number: int, answers: list[object]) -> None:
    headers = {"Authorization": f"Bearer {prepared.key}"}
    connection = server.connection()
    try:
        for i in range(REQUESTS_EACH):
            kind = (number + i) % 3
            if kind == 0:
                events = [
                    {"id": f"c{number}-{i}-{j}", "type": "call.ended", "org": "acme",
                     "agent": "bot", "properties": {"duration_seconds": 5}}
                    for j in range(EVENTS_PER_BATCH)
                ]  # fmt: skip
                answer = send(connection, "POST", "/v1/events", {"events": events}, headers)
            elif kind == 1:
                body = {"organization": "acme", "action": "start_session"}
                answer = send(connection, "POST", "/v1/check", body, headers)
            else:
                body = {"organization": "acme", "agent": "bot", "conversation": f"{number}-{i}"}
                answer = send(connection, "POST", "/v1/sessions/start", body, headers)
            answers.append((kind, *answer))
    except Exception as error:  # a dropped connection is a failure too
        answers.append(("error", 0, repr(error)))
    finally:
        connection.close()


def test_48_clients_on_sqlite_never_see_a_locked_database_lim_1(tmp_path: Path) -> None:
    """LIM-1, LIM-3, USE-1 under load: 48 clients, 12 requests each, over HTTP; every
    answer is 200, none names a locked database, and every event sent is counted once."""
    url = f"sqlite:///{tmp_path / 'many.db'}"
    engine = make_engine(url)
    upgrade(engine)
    prepared = prepare(url)
    log = tmp_path / "server.log"
    server = LiveServer(url, log)
    answers: list[object] = []
    try:
        threads = [
            threading.Thread(target=_client, args=(server, prepared, n, answers))
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not any(thread.is_alive() for thread in threads)
        status, usage = server.request(
            "GET",
            "/v1/usage?organization=acme",
            headers={"Authorization": f"Bearer {prepared.key}"},
        )
    finally:
        server.stop()
    assert len(answers) == CLIENTS * REQUESTS_EACH
    statuses = Counter((kind, status) for kind, status, _answer in answers)  # type: ignore[misc]
    assert set(statuses) == {(0, 200), (1, 200), (2, 200)}, statuses
    assert "database is locked" not in repr(answers)
    assert "database is locked" not in log.read_text()
    batches = sum(count for (kind, _status), count in statuses.items() if kind == 0)
    with transaction(engine) as session:
        stored = session.scalar(
            select(func.count())
            .select_from(UsageEventRow)
            .where(UsageEventRow.type == "call.ended")
        )
    engine.dispose()
    assert stored == batches * EVENTS_PER_BATCH
    assert status == 200
    assert usage["meters"]["calls"]["used"] == str(batches * EVENTS_PER_BATCH)
