"""Batches ingested at the same time (USE-1, USE-3, USE-6), on SQLite and PostgreSQL:
clients sending overlapping batches in different orders neither deadlock nor count
anything twice; the counters equal a recount of the stored events."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from tabkeeper.db.tables import UsageEventRow
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import World, all_at_once


def _events(start: Any) -> list[dict[str, Any]]:
    messages = [
        {"id": f"m{i}", "type": "message", "org": "acme", "agent": f"a{i % 3}",
         "conversation": f"k{i % 7}", "time": (start + timedelta(minutes=37 * i)).isoformat(),
         "properties": {"direction": "inbound" if i % 3 else "outbound"}}
        for i in range(120)
    ]  # fmt: skip
    calls = [
        {"id": f"c{i}", "type": "call.ended", "org": "acme", "agent": "voice",
         "time": (start + timedelta(minutes=41 * i)).isoformat(),
         "properties": {"duration_seconds": 30 + i}}
        for i in range(60)
    ]  # fmt: skip
    return messages + calls


def test_overlapping_batches_at_once_count_each_event_once(world: World) -> None:
    """USE-1, USE-3: 4 clients each send every event (shuffled, in batches of 45) at the
    same time: each event is stored once, and every meter equals its recount."""
    world.organization("acme")
    world.subscribe("acme", "trial")
    start = world.clock.now() + timedelta(minutes=1)
    world.clock.advance(timedelta(days=4))
    events = _events(start)

    def client(seed: int) -> None:
        mine = list(events)
        random.Random(seed).shuffle(mine)
        for first in range(0, len(mine), 45):
            with world.billing() as b:
                outcome = ingest_batch(b, mine[first : first + 45])
            assert outcome.refused == ()

    all_at_once(4, client)  # fails with the first error a client raised
    assert world.count(UsageEventRow) == len(events)
    for meter, (kept, recounted) in world.usage_and_recount("acme").items():
        assert kept == recounted, meter
        assert kept > 0, meter
