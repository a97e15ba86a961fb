"""OPS-1, OPS-5 under faults, on PostgreSQL only (it runs in `make test`'s `-m db` run;
skipped on SQLite): the production layout of docs/operations.md on one machine.

Two `tabkeeper serve --workers 2 --no-clock` (four API processes) and two `tabkeeper
worker` share one PostgreSQL. A client sends 20,000 `call.ended` events (one minute each)
in batches of 100, retrying a batch on a lost connection or a 503 with the same event
ids, and 500 session starts at once (each a conversation of its own, retried the same way)
for an organization whose session limit is 100; 40 subscriptions renew meanwhile. While
that runs the test kills one API process with SIGKILL (uvicorn's manager starts another),
kills one worker with SIGKILL while renewals are being done (its claimed work is taken
over after the lease, 10 s here), and restarts PostgreSQL once (`pg_ctl restart -m fast`).

Afterwards: the events stored and the counters equal what was sent and acknowledged
(a recount of the stored events, 20,000 minutes); exactly 100 starts were admitted and
counted; every renewal made one invoice, paid by exactly one charge; no answer was a 5xx
but a 503 problem+json with Retry-After while the database was down (a grace of 3 s after
it is back), and no request hung (a request timing out after 30 s fails the test). The
API processes and the surviving worker end on SIGTERM. The request log of each serve is
JSON lines, each with a request id.

Bounded: about a minute on 2 cores (seeding ~5 s, starting 6 processes ~10 s, the load
~20 s, the lease 10 s)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Organization, PaymentAttempt, UsageEventRow
from tabkeeper.db.tables_sandbox import SandboxCharge
from tabkeeper.domain.periods import boundary
from tabkeeper.services.access import create_api_key
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.session_starts import set_session_limit
from tests.browser import run_async
from tests.integration.conftest import World, make_world
from tests.ops.cluster import Cluster, restart_postgres

pytestmark = pytest.mark.skipif(
    not os.environ.get("TABKEEPER_TEST_DATABASE_URL"),
    reason="PostgreSQL only (scripts/with-postgres): make test's -m db run",
)

EVENTS, BATCH = 20_000, 100
STARTS, LIMIT = 500, 100
RENEWING = 40
LEASE_SECONDS = 10
GRACE = 3.0
"""Seconds after PostgreSQL is back in which a 503 still counts as 'while it was down'."""


@dataclass
class Seen:
    """Every answer the client got: (when, status, problem+json, Retry-After)."""

    answers: list[tuple[float, int, bool, bool]] = field(default_factory=list)
    lost: int = 0
    timeouts: int = 0
    acknowledged_batches: int = 0


class Client:
    def __init__(self, ports: list[int], key: str, seen: Seen) -> None:
        self.ports = ports
        self.headers = {"Authorization": f"Bearer {key}"}
        self.seen = seen
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, pool=None), limits=httpx.Limits(max_connections=200)
        )

    async def post(self, path: str, body: Any, turn: int) -> Any:
        """POST until 200: the same body again after a lost connection or a 503 (to the
        other server after a lost connection); anything else fails the test."""
        for attempt in range(200):
            port = self.ports[(turn + attempt) % len(self.ports)]
            try:
                answer = await self.http.post(
                    f"http://127.0.0.1:{port}{path}", json=body, headers=self.headers
                )
            except httpx.TimeoutException:
                self.seen.timeouts += 1
                continue
            except httpx.TransportError:
                self.seen.lost += 1
                await asyncio.sleep(0.1)
                continue
            problem = answer.headers.get("content-type") == "application/problem+json"
            retry_after = "retry-after" in answer.headers
            self.seen.answers.append((time.monotonic(), answer.status_code, problem, retry_after))
            if answer.status_code == 200:
                return answer.json()
            if answer.status_code == 503:
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
                continue
            raise AssertionError(f"{path}: {answer.status_code} {answer.text}")
        raise AssertionError(f"{path}: no answer after 200 tries")


def seed(engine: Engine) -> tuple[World, str]:
    """The world: `events` and `sessions` (limit 100) subscribed a day ago, and RENEWING
    organizations whose first period ended a moment ago (their renewals are due)."""
    world = make_world(engine)
    now = SystemClock().now()
    guess = now - timedelta(days=31)
    anchor = guess + (now - timedelta(seconds=1) - boundary(guess, "month", 1))
    world.clock.set(anchor)
    for index in range(RENEWING):
        world.organization(f"renewing{index}")
        world.subscribe(f"renewing{index}", "basic", "card_ok")
    world.clock.set(now - timedelta(days=1))
    for code in ("events", "sessions"):
        world.organization(code)
        world.subscribe(code, "basic", "card_ok")
    with world.billing() as b:
        set_session_limit(b, organization_by_code(b, "sessions"), LIMIT)
    with transaction(engine) as session:
        _, key = create_api_key(session, world.platform_id, "ops", world.clock.now())
    return world, key


def renewal_invoices(engine: Engine) -> list[tuple[str, str, int]]:
    """Each renewal invoice (a period starting after the first): organization, status,
    and how many charges of the sandbox succeeded for it."""
    charges = (
        select(func.count())
        .select_from(SandboxCharge)
        .join(PaymentAttempt, PaymentAttempt.idempotency_key == SandboxCharge.idempotency_key)
        .where(PaymentAttempt.invoice_id == Invoice.id, SandboxCharge.succeeded.is_(True))
        .scalar_subquery()
    )
    query = (
        select(Organization.code, Invoice.period_start, Invoice.status, charges)
        .select_from(Invoice)
        .join(Organization, Organization.id == Invoice.organization_id)
        .where(Organization.code.like("renewing%"))
        .order_by(Organization.code, Invoice.period_start)
    )
    with transaction(engine) as session:
        rows = list(session.execute(query))
    seen: set[str] = set()
    renewals = []
    for code, _start, status, count in rows:
        if code in seen:  # after the first invoice (the subscription's own)
            renewals.append((code, status, count))
        seen.add(code)
    return renewals


async def wait_for(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.1)
    return False


def test_ops1_two_servers_two_workers_under_kills_and_a_database_restart(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """OPS-1, OPS-5: see the module docstring."""
    world, key = seed(engine)
    environment = {
        **os.environ,
        "TABKEEPER_DATABASE_URL": database_url,
        "TABKEEPER_RATE_LIMITS": "false",
        "TABKEEPER_WORK_LEASE_SECONDS": str(LEASE_SECONDS),
        "TABKEEPER_SEPARATE_WORKER": "true",
    }
    cluster = Cluster(tmp_path, environment)
    try:
        servers = [cluster.serve("serve-a", 2), cluster.serve("serve-b", 2)]
        for server in servers:
            cluster.wait_ready(server)
        workers = [cluster.worker("worker-a"), cluster.worker("worker-b")]
        seen = Seen()
        outcome = run_async(
            load_with_faults(engine, cluster, [s.port or 0 for s in servers], workers, key, seen)
        )
        # the killed worker's claimed work is taken over after the lease
        assert run_async(wait_for(lambda: _renewed(engine), 60 + LEASE_SECONDS)), renewal_invoices(
            engine
        )
        for process in [*servers, workers[1]]:
            process.stop()
            assert process.process.returncode == 0, process.log.read_text()[-2000:]
    finally:
        cluster.stop()

    down_from, back_at, killed = outcome["down_from"], outcome["back_at"], outcome["killed"]
    statuses = Counter(status for _at, status, _problem, _retry in seen.answers)
    print(
        f"answers {dict(statuses)}, connections lost {seen.lost}, down {back_at - down_from:.1f} s"
    )
    assert killed == {"api": True, "worker": True}
    assert seen.timeouts == 0  # never a hang
    failures = [a for a in seen.answers if a[1] >= 500]
    for at, status, problem, retry_after in failures:
        assert status == 503 and problem and retry_after, (status, problem, retry_after)
        assert down_from <= at <= back_at + GRACE, (at - down_from, back_at - down_from)

    # events: every batch acknowledged once in the end; stored and counted exactly once
    assert seen.acknowledged_batches == EVENTS // BATCH
    assert world.count(UsageEventRow, UsageEventRow.organization_id == _id(world, "events")) == (
        EVENTS
    )
    counted = world.usage_and_recount("events")
    assert counted["minutes"] == (EVENTS, EVENTS)
    assert all(counter == recount for counter, recount in counted.values())

    # session starts: exactly the limit admitted, and counted
    assert outcome["admitted"] == LIMIT
    assert world.usage_and_recount("sessions")["sessions"] == (LIMIT, LIMIT)

    # renewals: one invoice each, paid, charged once
    renewals = renewal_invoices(engine)
    assert sorted(code for code, _status, _charges in renewals) == sorted(
        f"renewing{i}" for i in range(RENEWING)
    )
    assert all(status == "paid" and charges == 1 for _code, status, charges in renewals)

    # the request log: JSON lines with a request id
    logged = [
        json.loads(line)
        for server in servers
        for line in server.log.read_text().splitlines()
        if line.startswith("{")
    ]
    requests = [line for line in logged if line.get("logger") == "tabkeeper.request"]
    assert requests and all(line["request_id"] for line in requests)


def _id(world: World, code: str) -> int:
    with world.billing() as b:
        return organization_by_code(b, code).id


def _renewed(engine: Engine) -> bool:
    found = renewal_invoices(engine)
    return len(found) == RENEWING and all(s == "paid" and c == 1 for _o, s, c in found)


async def load_with_faults(
    engine: Engine,
    cluster: Cluster,
    ports: list[int],
    workers: list[Any],
    key: str,
    seen: Seen,
) -> dict[str, Any]:
    """The client's load and, beside it, the faults (see the module docstring)."""
    client = Client(ports, key, seen)
    batches: asyncio.Queue[int] = asyncio.Queue()
    for number in range(EVENTS // BATCH):
        batches.put_nowait(number)
    outcome: dict[str, Any] = {"killed": {"api": False, "worker": False}}

    async def send_events(turn: int) -> None:
        while not batches.empty():
            number = batches.get_nowait()
            events = [
                {
                    "id": f"ev-{number}-{i}",
                    "type": "call.ended",
                    "org": "events",
                    "agent": "a1",
                    "properties": {"duration_seconds": 60},
                }
                for i in range(BATCH)
            ]
            answer = await client.post("/v1/events", {"events": events}, turn)
            assert answer["accepted"] + answer["duplicates"] == BATCH, answer
            seen.acknowledged_batches += 1

    async def start_session(index: int) -> bool:
        body = {"organization": "sessions", "agent": "bot", "conversation": f"c{index}"}
        answer = await client.post("/v1/sessions/start", body, index)
        return bool(answer["allowed"])

    async def faults() -> None:
        await wait_until(lambda: seen.acknowledged_batches >= 20)
        api_processes = cluster.processes[0].children()
        os.kill(api_processes[0], signal.SIGKILL)
        outcome["killed"]["api"] = True
        renewing = await wait_for(lambda: len(renewal_invoices(engine)) >= 3, 60)
        os.kill(workers[0].pid, signal.SIGKILL)
        outcome["killed"]["worker"] = renewing
        await wait_until(lambda: seen.acknowledged_batches >= 80)
        outcome["down_from"] = time.monotonic()
        await asyncio.to_thread(restart_postgres)
        outcome["back_at"] = time.monotonic()

    try:
        starts = [asyncio.create_task(start_session(i)) for i in range(STARTS)]
        senders = [asyncio.create_task(send_events(turn)) for turn in range(4)]
        fault_task = asyncio.create_task(faults())
        admitted = await asyncio.gather(*starts)
        await asyncio.gather(*senders)
        await fault_task
    finally:
        await client.http.aclose()
    outcome["admitted"] = sum(admitted)
    return outcome


async def wait_until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.05)
