"""Credit consumptions per second (CRD-1, CRD-3), on SQLite and PostgreSQL, beside the
bare `UPDATE … RETURNING` of the same balance rows in the same run.

    .venv/bin/python bench/credits.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/credits.py --database postgresql

Set-up (not timed): a fresh database, migrated; one platform whose catalog rates
`smart_reply` at 1 credit; organizations subscribed through the services (the sandbox's
`card_ok`), each given 10,000,000 credits by a platform grant. Then, for each layout:
- `spread`: each client uses its own organization (many organizations at once);
- `one`: every client uses the same organization (one hot balance row),
C client processes (default 8: real API workers are processes, and Python threads would
share one core), released together, each doing N consumptions (default 2,000), first
one a transaction, then B a transaction (default 100):
- tabkeeper, one a transaction: what `POST /v1/credits/consume` runs: `billing(...)`
  (the transaction), `services.credits.consume_by_code` (the organization by code with
  its subscription in one query, the check's rules, the gate, the grant, the entry),
  COMMIT;
- tabkeeper, B a transaction: what `POST /v1/credits/consume/batch` runs:
  `services.credit_batches.consume_batch` with B uses;
- bare: `UPDATE credit_balances SET balance = balance - 1 WHERE organization_id = … AND
  balance >= 1 RETURNING balance` (one, or B of them) and COMMIT, through the same
  driver (a raw connection of an engine made the same way; `BEGIN IMMEDIATE` on SQLite).
Checked afterwards (not timed): every organization's balance went down by exactly what
was taken, the ledger has one use entry per consumption, and the balance is the sum of
the entries. See docs/benchmarks.md.

Holds over HTTP (CRD-5, `--part holds`): a fresh database seeded the same way (the
organizations subscribed an hour before the wall clock's now, so the server's own clock
finds them active), one server process (`tabkeeper serve`, hotpath_run.py) and C client
processes, each with its own organization, doing `--holds-n` calls of a hold of 5 credits
(`POST /v1/credits/holds`, 201) then its settle at 3 (`POST /v1/credits/holds/{id}/settle`):
calls (hold + settle) per second and the server's CPU per call; beside it, in the same
run, the bare conditional `UPDATE … RETURNING` of one credit a transaction from the same
number of client processes. Checked afterwards: each balance went down by 3 a call (and
1 a bare update), nothing is held, and the entries add up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from hotpath_run import Http, Tally, Work, load, run_clients, server
from hotpath_seed import wall_now
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import make_engine, normalize_url, transaction
from tabkeeper.db.migrate import upgrade
from tabkeeper.db.tables_credits import CreditBalance, CreditEntry
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.access import create_api_key
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.context import CatalogStore, billing, unit_of_work
from tabkeeper.services.credit_batches import Use, consume_batch
from tabkeeper.services.credit_purchases import grant_adjustment
from tabkeeper.services.credits import consume_by_code
from tabkeeper.services.organizations import create_organization, organization_by_code

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 10, tzinfo=UTC)
GIVEN = 10_000_000
TARGET = 5_000
"""The issue's target: consumes per second on PostgreSQL with 8 clients."""
CATALOG: dict[str, Any] = {
    "plans": {
        "basic": {"name": "Basic", "price": "30.00", "features": ["smart_reply"]},
    },
    "ai_features": {"smart_reply": {"credits": 1}},
    "credit_price": "0.01",
}


def seed(url: str, organizations: int) -> int:
    """The platform and `organizations` subscribed organizations with credits."""
    engine = make_engine(url)
    upgrade(engine)
    clock = SimulatedClock(START)
    store = CatalogStore()
    with transaction(engine) as session:
        found = ensure_platform(session, "bench", "Bench", START, {"trial": None})
        import_catalog(session, found, CATALOG, START)
        platform_id = found.id
    provider = SandboxProvider(engine, clock)
    for i in range(organizations):
        with billing(engine, platform_id, START, store) as b:
            create_organization(b, f"org{i}", {"owner": "owner"})
        work = unit_of_work(engine, platform_id, clock, store)
        subscribe_with_card(work, provider, f"org{i}", "basic", "card_ok")
        with billing(engine, platform_id, START, store) as b:
            grant_adjustment(b, organization_by_code(b, f"org{i}"), GIVEN, "bench")
    engine.dispose()
    if make_url(url).get_backend_name() == "postgresql":
        analyzer = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
        with analyzer.connect() as connection:
            connection.execute(text("ANALYZE"))  # as autovacuum would have on a live one
        analyzer.dispose()
    return platform_id


# -- the clients ------------------------------------------------------------------------


def tabkeeper_client(
    url: str, platform_id: int, code: str, client: str, n: int, batch: int
) -> Callable[[], None]:
    """n uses: one transaction each (`batch` 1, as `POST /v1/credits/consume`), or
    `batch` uses a transaction (as `POST /v1/credits/consume/batch`)."""
    engine = make_engine(url)
    store = CatalogStore()
    with billing(engine, platform_id, NOW, store) as b:  # warm: the catalog, the pool
        organization_by_code(b, code)

    def work() -> None:
        for i in range(n):
            with billing(engine, platform_id, NOW, store) as b:
                consume_by_code(b, code, "smart_reply", f"c{client}-{i}", agent=f"a{client}")

    def work_batched() -> None:
        for first in range(0, n, batch):
            uses = [
                Use(code, "smart_reply", f"c{client}-{i}", 1, f"a{client}")
                for i in range(first, min(n, first + batch))
            ]
            with billing(engine, platform_id, NOW, store) as b:
                outcomes = consume_batch(b, uses)
            assert all(o.used is not None and not o.used.duplicate for o in outcomes)

    return work if batch == 1 else work_batched


def bare_client(
    url: str, platform_id: int, code: str, client: str, n: int, batch: int
) -> Callable[[], None]:
    """n bare `UPDATE … RETURNING`s, `batch` to a transaction."""
    engine = make_engine(url)
    with engine.connect() as connection:
        organization_id = connection.execute(
            text("SELECT id FROM organizations WHERE code = :code"), {"code": code}
        ).scalar_one()
    raw = engine.raw_connection()
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    statement = (
        f"UPDATE credit_balances SET balance = balance - 1 "
        f"WHERE organization_id = {mark} AND balance >= 1 RETURNING balance"
    )

    def work() -> None:
        cursor = raw.cursor()
        for first in range(0, n, batch):
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            for _ in range(first, min(n, first + batch)):
                cursor.execute(statement, (organization_id,))
                assert cursor.fetchone() is not None
            raw.commit()
        cursor.close()

    return work


def _client(kind: str, args: tuple[Any, ...], ready: Any, go: Any, done: Any) -> None:
    work = (tabkeeper_client if kind == "tabkeeper" else bare_client)(*args)
    ready.put(True)
    go.wait()
    work()
    done.put(time.perf_counter())


def timed(
    kind: str, url: str, platform_id: int, codes: list[str], n: int, batch: int, label: str
) -> float:
    """Consumptions per second of len(codes) client processes, each doing n."""
    context = multiprocessing.get_context("fork")
    ready, done, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=_client,
            args=(kind, (url, platform_id, code, f"{label}{i}", n, batch), ready, go, done),
        )
        for i, code in enumerate(codes)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    ended: float = max(done.get(timeout=3600) for _ in processes)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a {kind} client failed (exit {process.exitcode})")
    return len(codes) * n / (ended - started)


def check(url: str, organizations: int, taken: dict[str, int], uses: dict[str, int]) -> None:
    """Every balance went down by exactly what was taken (by tabkeeper and by the bare
    updates); one use entry per consumption; the entries add up to the grant less the
    uses (the bare updates write no entries)."""
    engine = make_engine(url)
    with transaction(engine) as session:
        for i in range(organizations):
            code = f"org{i}"
            org_id = session.scalar(
                text("SELECT id FROM organizations WHERE code = :c"), {"c": code}
            )
            balance = session.scalar(
                select(CreditBalance.balance).where(CreditBalance.organization_id == org_id)
            )
            entries = session.scalar(
                select(func.sum(CreditEntry.amount)).where(CreditEntry.organization_id == org_id)
            )
            used = session.scalar(
                select(func.count()).where(
                    CreditEntry.organization_id == org_id, CreditEntry.kind == "use"
                )
            )
            if balance != GIVEN - taken.get(code, 0) or used != uses.get(code, 0):
                raise SystemExit(f"check failed for {code}: balance {balance}, uses {used}")
            if entries != GIVEN - uses.get(code, 0):
                raise SystemExit(f"check failed for {code}: the entries add up to {entries}")
    engine.dispose()


# -- holds over HTTP (CRD-5) -------------------------------------------------------------

HOLD, SETTLE = 5, 3


def seed_holds(url: str, organizations: int) -> tuple[int, str]:
    """`seed` with the subscriptions an hour before now, and an API key: the platform's
    id and the key."""
    engine = make_engine(url)
    upgrade(engine)
    start = wall_now().replace(microsecond=0) - timedelta(hours=1)
    clock = SimulatedClock(start)
    store = CatalogStore()
    with transaction(engine) as session:
        found = ensure_platform(session, "bench", "Bench", start, {"trial": None})
        import_catalog(session, found, CATALOG, start)
        _, key = create_api_key(session, found.id, "bench", start)
        platform_id = found.id
    provider = SandboxProvider(engine, clock)
    for i in range(organizations):
        with billing(engine, platform_id, start, store) as b:
            create_organization(b, f"org{i}", {"owner": "owner"})
        work = unit_of_work(engine, platform_id, clock, store)
        subscribe_with_card(work, provider, f"org{i}", "basic", "card_ok")
        with billing(engine, platform_id, start, store) as b:
            grant_adjustment(b, organization_by_code(b, f"org{i}"), GIVEN, "bench")
    engine.dispose()
    return platform_id, key


def _holds_work(port: int, key: str, code: str, n: int) -> Work:
    http = Http(port, key)
    hold = {"organization": code, "feature": "smart_reply", "credits": HOLD}

    def work(deadline: float) -> Tally:
        tally = Tally()
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            status, made = http.call("POST", "/v1/credits/holds", hold)
            if status != 201:
                raise RuntimeError(f"hold: {status} {str(made)[:300]}")
            status, settled = http.call(
                "POST", f"/v1/credits/holds/{made['id']}/settle", {"credits": SETTLE}
            )
            if status != 200 or settled["state"] != "settled":
                raise RuntimeError(f"settle: {status} {str(settled)[:300]}")
            tally.latencies.append(time.perf_counter() - started)
            tally.operations += 1
        http.close()
        return tally

    return work


def check_holds(url: str, organizations: int, calls: dict[str, int], bare: int) -> None:
    """Each balance went down by SETTLE a call and 1 a bare update; nothing is held; the
    entries add up to the grant less the settled costs."""
    engine = make_engine(url)
    with transaction(engine) as session:
        for i in range(organizations):
            code = f"org{i}"
            row = session.execute(
                text(
                    "SELECT b.balance, b.held FROM credit_balances b JOIN organizations o "
                    "ON o.id = b.organization_id WHERE o.code = :c"
                ),
                {"c": code},
            ).one()
            entries = session.scalar(
                text(
                    "SELECT SUM(e.amount) FROM credit_entries e JOIN organizations o "
                    "ON o.id = e.organization_id WHERE o.code = :c"
                ),
                {"c": code},
            )
            done = calls.get(code, 0)
            if (row[0], row[1]) != (GIVEN - SETTLE * done - bare, 0):
                raise SystemExit(f"holds check failed for {code}: balance {row[0]}, held {row[1]}")
            if entries != GIVEN - SETTLE * done:
                raise SystemExit(f"holds check failed for {code}: the entries add up to {entries}")
    engine.dispose()


def run_holds(database: str, url: str, clients: int, n: int) -> tuple[float, float, float]:
    """(hold + settle calls per second over HTTP, bare updates per second, the server's
    CPU ms per call)."""
    platform_id, key = seed_holds(url, clients)
    print(f"# {describe(url)}", flush=True)
    codes = [f"org{i}" for i in range(clients)]
    with server(url) as running:

        def make(index: int) -> Work:
            return _holds_work(running.port, key, codes[index], n)

        ran = run_clients(clients, make, 3600, running)
    done = ran.tally.operations
    per_second = done / ran.seconds
    cpu = (ran.server_cpu or 0) * 1000 / done
    bare = timed("bare", url, platform_id, codes, n, 1, "holds")
    check_holds(url, clients, {code: n for code in codes}, n)
    print(
        f"{database:10} holds  clients={clients} n={n}: tabkeeper {per_second:8,.0f} hold+settle "
        f"calls/s over HTTP, server {cpu:.2f} ms CPU/call; bare {bare:8,.0f}/s; ratio "
        f"{per_second / bare:.4f}; load {load()}",
        flush=True,
    )
    return per_second, bare, cpu


# -- databases --------------------------------------------------------------------------


def sqlite_url(folder: Path, label: str) -> str:
    return f"sqlite:///{folder / f'{label}.db'}"


def postgres_url(server: str, label: str) -> tuple[str, Callable[[], None]]:
    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    name = f"tk_bench_credits_{label}_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(normalize_url(server)).set(database=name).render_as_string(hide_password=False)
    return url, drop


def describe(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            shown = f"SQLite {sqlite_version()} (journal_mode={journal}, synchronous={sync})"
        else:
            settings = {
                name: connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes")
            }
            version = settings.pop("server_version")
            shown = (
                f"PostgreSQL {version} (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"
            )
    engine.dispose()
    return shown


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def run(
    database: str, url: str, clients: int, n: int, batch: int
) -> list[tuple[str, str, int, float, float]]:
    """(database, layout, uses a transaction, tabkeeper/s, bare/s) for each layout, one
    use a transaction and `batch` uses a transaction."""
    platform_id = seed(url, clients)
    print(f"# {describe(url)}", flush=True)
    figures = []
    taken: dict[str, int] = {}
    uses: dict[str, int] = {}
    for layout in ("spread", "one"):
        codes = [f"org{i}" if layout == "spread" else "org0" for i in range(clients)]
        for size in (1, batch):
            label = f"{layout}{size}-"
            per_second = timed("tabkeeper", url, platform_id, codes, n, size, label)
            for code in codes:
                taken[code] = taken.get(code, 0) + n
                uses[code] = uses.get(code, 0) + n
            check(url, clients, taken, uses)
            bare = timed("bare", url, platform_id, codes, n, size, label)
            for code in codes:
                taken[code] = taken.get(code, 0) + n
            figures.append((database, layout, size, per_second, bare))
            print(
                f"{database:10} {layout:6} clients={clients} n={n} uses/transaction={size:<4}: "
                f"tabkeeper {per_second:8,.0f}/s  bare {bare:8,.0f}/s  "
                f"ratio {per_second / bare:.2f}",
                flush=True,
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--n", type=int, default=2_000, help="consumptions per client")
    parser.add_argument("--batch", type=int, default=100, help="uses per batched transaction")
    parser.add_argument("--postgres-url", default=os.environ.get("TABKEEPER_TEST_DATABASE_URL"))
    parser.add_argument(
        "--part", choices=("consume", "holds"), action="append",
        help="consume (in-process uses) and/or holds (hold + settle over HTTP); default both",
    )  # fmt: skip
    parser.add_argument("--holds-n", type=int, default=500, help="hold + settle calls per client")
    args = parser.parse_args()
    parts = args.part or ["consume", "holds"]
    print(
        f"# Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    for database in args.database or ["sqlite"]:
        if database == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="tabkeeper-bench-credits-"))
            try:
                if "consume" in parts:
                    run(database, sqlite_url(folder, "credits"), args.clients, args.n, args.batch)
                if "holds" in parts:
                    run_holds(database, sqlite_url(folder, "holds"), args.clients, args.holds_n)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        if not args.postgres_url:
            sys.exit("--database postgresql needs --postgres-url or TABKEEPER_TEST_DATABASE_URL")
        if "holds" in parts:
            url, drop = postgres_url(args.postgres_url, "holds")
            try:
                run_holds(database, url, args.clients, args.holds_n)
            finally:
                drop()
        if "consume" not in parts:
            continue
        url, drop = postgres_url(args.postgres_url, "run")
        try:
            figures = run(database, url, args.clients, args.n, args.batch)
        finally:
            drop()
        for _database, layout, size, per_second, _bare in figures:
            if layout == "spread":
                verdict = "met" if per_second >= TARGET else "missed"
                print(
                    f"# target {TARGET:,}/s with {args.clients} clients (spread, {size} uses a "
                    f"transaction): {verdict}"
                )


if __name__ == "__main__":
    main()
