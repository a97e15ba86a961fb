"""The world of the hot-path benches: a platform with the demo catalog and an API key,
organizations subscribed through the services, and events already stored, written with
plain multi-row inserts straight into the real tables (events, conversations, counters),
consistent with what tabkeeper would have counted (proven by a recount after seeding).

Seeded layout (`stored` events over `background` organizations `bg0`, `bg1`, …, each
subscribed to Growth at `start`): half message events in conversations of 20 messages
(one 24-hour window each, every other message inbound), half `call.ended` events of 30 to
329 seconds, all by agent `bot`, all in the current period.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import hotpath_calls as tk
from renewals_databases import Databases
from sqlalchemy import Engine, bindparam, insert, text, update

MESSAGES_PER_CONVERSATION = 20
AGENT = "bot"
SEED_CHUNK = 10_000


@dataclass
class World:
    databases: Databases
    url: str
    platform_id: int
    api_key: str
    start: datetime
    """When every organization was created and subscribed (its period's start)."""
    engine: Engine
    organizations: list[str] = field(default_factory=list)

    def subscribed(self, code: str, plan: str = "growth") -> str:
        tk.create_subscribed(self.engine, self.platform_id, code, plan, self.start)
        self.organizations.append(code)
        return code

    def plain(self, code: str) -> int:
        """An organization without a subscription; its id."""
        tk.create_plain(self.engine, self.platform_id, code, self.start)
        return self.organization_id(code)

    def organization_id(self, code: str) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT id FROM organizations WHERE code = :c AND platform_id = :p"),
                    {"c": code, "p": self.platform_id},
                ).scalar_one()
            )

    def now(self) -> datetime:
        return wall_now()

    def close(self) -> None:
        self.engine.dispose()
        self.databases.drop(self.url)


def wall_now() -> datetime:
    """The machine's clock: the server stamps what it receives with it, so the benches'
    events and checks use it too."""
    return datetime.now(UTC)  # noqa: TID251 - the real clock, as the server's


def say(message: str) -> None:
    print(message, flush=True)


def build_world(databases: Databases, label: str, stored: int, background: int) -> World:
    """A fresh migrated database with the platform, `background` subscribed
    organizations and `stored` events among them; checked before it is returned."""
    url = databases.create(label)
    engine = tk.make_engine(url)
    tk.upgrade(engine)
    start = wall_now().replace(microsecond=0) - timedelta(hours=12)
    made = tk.create_platform(engine, start)
    world = World(databases, url, made.platform_id, made.api_key, start, engine)
    began = time.perf_counter()
    codes = [world.subscribed(f"bg{i}") for i in range(background)]
    subscribed = time.perf_counter() - began
    began = time.perf_counter()
    if stored:
        seed_events(world, codes, stored)
    databases.settle(url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
    seeded = time.perf_counter() - began
    for code in codes[:2]:
        require_exact(world, code, "after seeding")
    say(
        f"  seeded: {background} organizations subscribed through the services in "
        f"{subscribed:.1f} s, {stored:,} events with plain inserts in {seeded:.1f} s; "
        f"recount of {min(2, background)} of them: exact"
    )
    world.organizations.clear()
    return world


def seed_events(world: World, codes: list[str], stored: int) -> None:
    ids = {code: world.organization_id(code) for code in codes}
    per = stored // len(codes)
    extra = stored - per * len(codes)
    with world.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size=-200000")
        for n, code in enumerate(codes):
            count = per + (1 if n < extra else 0)
            rows, conversations, counters = _organization_rows(
                ids[code], code, count, world.start, world.start
            )
            for chunk in _chunks(rows, SEED_CHUNK):
                connection.execute(EVENTS_INSERT, chunk)
            for chunk in _chunks(conversations, SEED_CHUNK):
                connection.execute(CONVERSATIONS_INSERT, chunk)
            connection.execute(
                text("DELETE FROM usage_counters WHERE organization_id = :o"), {"o": ids[code]}
            )
            connection.execute(COUNTERS_INSERT, counters)


EVENTS_INSERT = insert(tk.table("events"))
CONVERSATIONS_INSERT = insert(tk.table("conversations"))
COUNTERS_INSERT = insert(tk.table("usage_counters"))


def _organization_rows(
    organization_id: int, code: str, count: int, start: datetime, period_start: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The event rows of one organization, its conversation rows and its counters (the
    sessions, interactions and minutes of the demo catalog, whole and for agent `bot`).
    Written through the tables' own column types (UTC datetimes, JSON)."""
    messages = count // 2
    calls = count - messages
    rows: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    inbound_total = 0
    received = start + timedelta(hours=6)
    n_conversations = math.ceil(messages / MESSAGES_PER_CONVERSATION) if messages else 0
    for k in range(n_conversations):
        base = start + timedelta(seconds=(k * 7) % 21_600)
        times: list[tuple[datetime, bool]] = []
        for j in range(min(MESSAGES_PER_CONVERSATION, messages - k * MESSAGES_PER_CONVERSATION)):
            at, inbound = base + timedelta(seconds=j * 30), j % 2 == 0
            times.append((at, inbound))
            inbound_total += inbound
            rows.append({
                "organization_id": organization_id, "client_id": f"{code}-m{k}-{j}",
                "type": "message", "agent": AGENT, "conversation": f"c{k}", "time": at,
                "properties": {"direction": "inbound" if inbound else "outbound"},
                "received_at": received,
            })  # fmt: skip
        conversations.append({
            "organization_id": organization_id, "conversation": f"c{k}", "agent": AGENT,
            "state": tk.conversation_state(times), "updated_at": received,
            "billing_organization_id": organization_id,
        })  # fmt: skip
    minutes = 0
    for i in range(calls):
        duration = 30 + i % 300
        minutes += math.ceil(duration / 60)
        rows.append({
            "organization_id": organization_id, "client_id": f"{code}-c{i}",
            "type": "call.ended", "agent": AGENT, "conversation": None,
            "time": start + timedelta(seconds=(i * 13) % 21_600),
            "properties": {"duration_seconds": duration}, "received_at": received,
        })  # fmt: skip
    counters = []
    for meter, quantity, answered in (
        ("sessions", n_conversations, n_conversations),
        ("interactions", inbound_total, 0),
        ("minutes", minutes, 0),
    ):
        for scope in ("", f"agent:{AGENT}"):
            counters.append({
                "organization_id": organization_id, "meter": meter,
                "period_start": period_start, "scope": scope,
                "quantity": quantity * tk.SCALE, "answered": answered * tk.SCALE,
            })  # fmt: skip
    return rows, conversations, counters


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for first in range(0, len(rows), size):
        yield rows[first : first + size]


def require_exact(world: World, code: str, when: str) -> None:
    """Every counter of `code`'s current period equals the recount of its events."""
    found = tk.counters_and_recounts(world.engine, world.platform_id, code, world.now())
    wrong = {meter: pair for meter, pair in found.items() if pair[0] != pair[1]}
    if wrong:
        raise SystemExit(f"NOT EXACT {when}: {code}: (counter, recount) {wrong}")


def stored_events(world: World, codes: list[str], kind: str | None = None) -> int:
    """Events stored for these organizations (of type `kind` when given)."""
    query = (
        "SELECT count(*) FROM events e JOIN organizations o ON o.id = e.organization_id "
        "WHERE o.platform_id = :p AND o.code IN :codes"
    )
    if kind is not None:
        query += " AND e.type = :kind"
    statement = text(query).bindparams(bindparam("codes", expanding=True))
    with world.engine.connect() as connection:
        return int(
            connection.execute(
                statement, {"p": world.platform_id, "codes": codes, "kind": kind}
            ).scalar_one()
        )


def seed_conversation(
    world: World, code: str, conversation: str, agent: str, messages: list[tuple[datetime, bool]]
) -> None:
    """A conversation of `code` with these (time, inbound) messages, in one 24-hour window
    opened by the first, written with plain inserts: its events, its row, and its window
    and inbound messages added to the counters."""
    assert messages[-1][0] - messages[0][0] < timedelta(hours=24)
    organization_id = world.organization_id(code)
    received = world.start + timedelta(hours=5)
    rows = [
        {"organization_id": organization_id, "client_id": f"{conversation}-{j}",
         "type": "message", "agent": agent, "conversation": conversation, "time": at,
         "properties": {"direction": "inbound" if inbound else "outbound"},
         "received_at": received}
        for j, (at, inbound) in enumerate(messages)
    ]  # fmt: skip
    inbound = sum(1 for _, flag in messages if flag)
    answered = any(flag for _, flag in messages)
    counters = tk.table("usage_counters")
    with world.engine.begin() as connection:
        for chunk in _chunks(rows, SEED_CHUNK):
            connection.execute(EVENTS_INSERT, chunk)
        connection.execute(CONVERSATIONS_INSERT, [{
            "organization_id": organization_id, "billing_organization_id": organization_id,
            "conversation": conversation, "agent": agent,
            "state": tk.conversation_state(messages), "updated_at": received,
        }])  # fmt: skip
        for meter, quantity, replied in (
            ("sessions", 1, int(answered)),
            ("interactions", inbound, 0),
        ):
            for scope in ("", f"agent:{agent}"):
                key = (
                    (counters.c.organization_id == organization_id)
                    & (counters.c.meter == meter)
                    & (counters.c.period_start == world.start)
                    & (counters.c.scope == scope)
                )
                changed = connection.execute(
                    update(counters)
                    .where(key)
                    .values(
                        quantity=counters.c.quantity + quantity * tk.SCALE,
                        answered=counters.c.answered + replied * tk.SCALE,
                    )
                ).rowcount
                if not changed:
                    connection.execute(COUNTERS_INSERT, [{
                        "organization_id": organization_id, "meter": meter,
                        "period_start": world.start, "scope": scope,
                        "quantity": quantity * tk.SCALE, "answered": replied * tk.SCALE,
                    }])  # fmt: skip
