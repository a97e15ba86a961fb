"""A crash never strands an Idempotency-Key (USE-1): a real server is killed (SIGKILL)
while it works on a keyed batch of 1,000 events; a new server on the same database takes
the retry with the same key and body (not 409 `request_in_progress`), and every event is
counted exactly once, wherever the kill landed. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from sqlalchemy import func, select

from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.tables import UsageEventRow
from tabkeeper.db.tables_access import IdempotentRequest
from tests.integration.live_server import LiveServer, prepare

EVENTS = 1_000


def _batch() -> dict[str, object]:
    return {
        "events": [
            {"id": f"call-{i}", "type": "call.ended", "org": "acme", "agent": "bot",
             "properties": {"duration_seconds": 30}}
            for i in range(EVENTS)
        ]
    }  # fmt: skip


def _raw_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> socket.socket:
    """Send the whole request and leave the answer unread."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(head + body)
    return client


def test_a_retry_after_a_kill_during_a_keyed_batch_counts_every_event_once_use_1(
    database_url: str, tmp_path: Path
) -> None:
    """USE-1: kill -9 while the server works on a keyed batch of 1,000 events (as soon as
    its Idempotency-Key marker is written); the retry on a new server is accepted and
    each event is counted once."""
    prepared = prepare(database_url)
    headers = {
        "Authorization": f"Bearer {prepared.key}",
        "Content-Type": "application/json",
        "Idempotency-Key": "batch-1",
    }
    body = _batch()
    log = tmp_path / "server.log"
    engine = make_engine(database_url)
    try:
        first = LiveServer(database_url, log)
        client = _raw_post(first.port, "/v1/events", json.dumps(body).encode(), headers)
        deadline = time.monotonic() + 60
        while True:  # the server works on it once the key's marker is in the database
            with transaction(engine) as session:
                if session.scalar(select(func.count()).select_from(IdempotentRequest)):
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.002)
        first.kill()
        client.close()
        with transaction(engine) as session:
            kept_before = session.scalar(select(func.count()).select_from(UsageEventRow))
        assert kept_before in (0, EVENTS)  # a batch is one transaction: all or nothing

        second = LiveServer(database_url, log)
        try:
            status, answer = second.request("POST", "/v1/events", body, headers)
            assert status == 200, answer
            assert answer["refused"] == []
            assert answer["accepted"] + answer["duplicates"] == EVENTS
            again, replayed = second.request("POST", "/v1/events", body, headers)
            assert (again, replayed) == (status, answer)  # the key now replays its answer
            usage_status, usage = second.request(
                "GET",
                "/v1/usage?organization=acme",
                headers={"Authorization": headers["Authorization"]},
            )
            assert usage_status == 200, usage
            assert usage["meters"]["calls"]["used"] == str(EVENTS)
        finally:
            second.stop()
        with transaction(engine) as session:
            stored = session.scalar(select(func.count()).select_from(UsageEventRow))
        assert stored == EVENTS
    finally:
        engine.dispose()
