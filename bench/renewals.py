"""Renewals per second of tabkeeper's billing clock, on SQLite and PostgreSQL.

    .venv/bin/python bench/renewals.py --n 1000 --n 10000 --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/renewals.py --n 1000 --n 10000 --database postgresql

For each N and database: a fresh database with N organizations subscribed to a monthly
plan at the same anchor (renewals_seed.py), then, timed, `BillingClock.run_until` at the
end of their first period: N renewals, each invoiced in one transaction (usage in
arrears, new period, invoice with its gapless number, notices, the collection queued) and
charged through the sandbox provider and recorded. On PostgreSQL the same again with
several worker processes on the same database (FOR UPDATE SKIP LOCKED shares the work).
Each run starts from a copy of the seeded database and is checked afterwards, untimed
(renewals_checks.py). Then the same renewals written with plain SQL through the same
driver (renewals_bare.py), and the ratio. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy
from renewals_bare import BareRenewals
from renewals_checks import CheckFailed, require_alike, verify_renewed
from renewals_databases import Databases, PostgresDatabases, SqliteDatabases
from renewals_seed import ANCHOR, PERIOD_END, seed
from sqlalchemy import Engine, event, func, select

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tabkeeper.db.schema import METADATA
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.context import CatalogStore
from tabkeeper.worker.clock import BillingClock

TARGET_PER_MINUTE = 10_000
"""The issue's target on this machine, on SQLite."""


@dataclass(frozen=True, slots=True)
class Figure:
    database: str
    n: int
    workers: int
    tabkeeper_per_second: float
    bare_per_second: float
    rows_per_renewal: float
    bare_rows_per_renewal: float

    @property
    def ratio(self) -> float:
        return self.tabkeeper_per_second / self.bare_per_second


# -- runs -----------------------------------------------------------------------------


class Run:
    """One worker's run, prepared before the timer starts: `work()` is what is timed.
    `statements` counts the SQL statements its engine sent, where it is counted."""

    def __init__(self, engine: Engine, work: Callable[[], int]) -> None:
        self.engine, self.work = engine, work
        self.statements: int | None = None

    def count_statements(self) -> None:
        """Count each statement sent (BEGIN included, COMMIT not: the driver's own call)."""
        self.statements = 0

        def counted(*_arguments: Any) -> None:
            assert self.statements is not None
            self.statements += 1

        event.listen(self.engine, "before_cursor_execute", counted)

    def close(self) -> None:
        self.engine.dispose()


def _tabkeeper_run(url: str, platform_id: int) -> Run:
    """A billing clock on a fresh engine, its simulated clock at the period's end."""
    del platform_id
    engine = make_engine(url)
    clock = SimulatedClock(ANCHOR)
    worker = BillingClock(engine, SandboxProvider(engine, clock), clock, store=CatalogStore())
    with engine.connect():
        pass  # the connection is made before the timer starts
    clock.set(PERIOD_END)
    run = Run(engine, lambda: worker.run_until(PERIOD_END))
    run.count_statements()  # the sandbox provider's statements too: it uses this engine
    return run


def _bare_run(url: str, platform_id: int) -> Run:
    engine = make_engine(url)
    bare = BareRenewals(engine, platform_id)

    def work() -> int:
        try:
            return bare.run()
        finally:
            bare.close()

    return Run(engine, work)


RUNS = {"tabkeeper": _tabkeeper_run, "bare": _bare_run}


def _worker_process(kind: str, url: str, platform_id: int, ready: Any, go: Any, done: Any) -> None:
    """One of several workers: a failure is reported on `done` as text, then raised."""
    try:
        run = RUNS[kind](url, platform_id)
    except BaseException as error:
        ready.put(f"{type(error).__name__}: {error}")
        raise
    ready.put(os.getpid())
    go.wait()
    try:
        done.put(run.work())
    except BaseException as error:
        done.put(f"{type(error).__name__}: {error}")
        raise
    finally:
        run.close()


def _gather(answers: Any, processes: list[Any], what: str) -> list[int]:
    """One answer per process; a failed worker (an answer in text, or a process that
    ended without answering) stops the bench instead of leaving it waiting."""
    found: list[int] = []
    while len(found) < len(processes):
        try:
            answer = answers.get(timeout=0.5)
        except queue.Empty:
            if any(p.exitcode is not None for p in processes) and answers.empty():
                dead = [p.exitcode for p in processes if p.exitcode is not None]
                raise CheckFailed(f"a worker ended before {what} (exit codes {dead})") from None
            continue
        if isinstance(answer, str):
            raise CheckFailed(f"a worker failed before {what}: {answer[:500]}")
        found.append(answer)
    return found


@dataclass(frozen=True, slots=True)
class Timed:
    done: int
    seconds: float
    cpu_seconds: float | None
    """The CPU time of this process (one worker): what the run costs whatever else the
    machine does (the database's own time is in it on SQLite, not on PostgreSQL)."""
    statements: int | None


def _timed(kind: str, url: str, platform_id: int, workers: int) -> Timed:
    """Work done, seconds taken, and (one worker) CPU time and statements sent by
    `workers` runs of `kind` on `url` (one in this process; several in processes of
    their own, started before the timer)."""
    if workers == 1:
        run = RUNS[kind](url, platform_id)
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            done = run.work()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            return Timed(done, seconds, cpu, run.statements)
        finally:
            run.close()
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Queue(), context.Event(), context.Queue()
    processes = [
        context.Process(target=_worker_process, args=(kind, url, platform_id, ready, go, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        _gather(ready, processes, "it was ready")
        started = time.perf_counter()
        go.set()
        done = sum(_gather(results, processes, "it was done"))
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.exitcode is None:
                process.terminate()
    return Timed(done, elapsed, None, None)


def _rows(url: str) -> int:
    """All rows of tabkeeper's tables, to tell how many a renewal writes."""
    engine = make_engine(url)
    with engine.connect() as connection:
        total = sum(
            int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for table in METADATA.sorted_tables
        )
    engine.dispose()
    return total


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _say(label: str, message: str) -> None:
    print(f"[{label}] {message}", flush=True)


def _rate(n: int, seconds: float) -> str:
    per_second = n / seconds
    return (
        f"{n} renewals in {seconds:.2f} s = {per_second:,.0f} renewals/s, "
        f"{per_second * 60:,.0f}/min"
    )


def measure(databases: Databases, n: int, workers: int, originals: int) -> list[Figure]:
    """Seed once, then time tabkeeper and bare SQL on copies: with 1 worker, and with
    `workers` workers when above 1."""
    label = f"{databases.name} N={n}"
    seeded_url = databases.create(f"seed_{n}")
    started = time.perf_counter()
    with _engine(seeded_url) as engine:
        upgrade(engine)
        seeded = seed(engine, n, originals)
        require_alike(engine, "after seeding", n, seeded.through_services)
    databases.settle(seeded_url)
    _say(
        label,
        f"seeded in {time.perf_counter() - started:.1f} s: {seeded.through_services} "
        f"organizations through the services, {n - seeded.through_services} copies; alike",
    )
    before = _rows(seeded_url)
    figures = []
    for count in sorted({1, workers}):
        rates, rows = {}, {}
        for kind in ("tabkeeper", "bare"):
            url = databases.copy(seeded_url, f"{kind}_{n}_{count}")
            try:
                timed = _timed(kind, url, seeded.platform_id, count)
                with _engine(url) as engine:
                    verify_renewed(engine, n, PERIOD_END)
                    if kind == "tabkeeper":
                        require_alike(engine, "after the run", n, seeded.through_services)
                rows[kind] = (_rows(url) - before) / n
            finally:
                databases.drop(url)
            rates[kind] = n / timed.seconds
            workers_text = f"{count} worker{'s' if count > 1 else ''}"
            cpu = "" if timed.cpu_seconds is None else f" (CPU: {n / timed.cpu_seconds:,.0f}/s)"
            sent = "" if timed.statements is None else f"{timed.statements / n:.1f} statements and "
            _say(
                label,
                f"{kind:9} {workers_text}: {_rate(n, timed.seconds)}{cpu}; {timed.done} pieces "
                f"of work; {sent}{rows[kind]:.0f} rows written per renewal; checked",
            )
        figure = Figure(
            databases.name, n, count, rates["tabkeeper"], rates["bare"],
            rows["tabkeeper"], rows["bare"],
        )  # fmt: skip
        figures.append(figure)
        _say(label, f"ratio tabkeeper/bare, {count} worker(s): {figure.ratio:.3f}")
    databases.drop(seeded_url)
    return figures


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpus} CPUs (nproc), {model or platform.machine()}; Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def _table(figures: list[Figure]) -> str:
    head = (
        "| database | N | workers | tabkeeper renewals/s | tabkeeper renewals/min "
        "| bare SQL renewals/s | tabkeeper/bare | rows per renewal (tk / bare) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {f.database} | {f.n:,} | {f.workers} | {f.tabkeeper_per_second:,.0f} "
        f"| {f.tabkeeper_per_second * 60:,.0f} | {f.bare_per_second:,.0f} | {f.ratio:.3f} "
        f"| {f.rows_per_renewal:.0f} / {f.bare_rows_per_renewal:.0f} |"
        for f in figures
    ]
    return "\n".join([head, *lines])


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, action="append", help="subscriptions to renew (repeat; 1000 and 10000)"
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        help="default: both when a PostgreSQL URL is known, else sqlite",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TABKEEPER_TEST_DATABASE_URL"),
        help="a server the bench may create and drop databases on "
        "(default: $TABKEEPER_TEST_DATABASE_URL, set by scripts/with-postgres)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="parallel workers on PostgreSQL (default 2)"
    )
    parser.add_argument(
        "--originals",
        type=int,
        default=20,
        help="organizations subscribed through the services; the rest are copies (default 20)",
    )
    arguments = parser.parse_args(argv)
    arguments.n = arguments.n or [1000, 10000]
    if arguments.database is None:
        arguments.database = "both" if arguments.postgres_url else "sqlite"
    if arguments.database != "sqlite" and not arguments.postgres_url:
        parser.error("PostgreSQL needs --postgres-url or TABKEEPER_TEST_DATABASE_URL")
    if min(arguments.n) < 1 or arguments.workers < 1 or arguments.originals < 1:
        parser.error("--n, --workers and --originals must be at least 1")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    print(f"tabkeeper renewals bench: {_machine()}", flush=True)
    kinds = ["sqlite", "postgresql"] if arguments.database == "both" else [arguments.database]
    figures: list[Figure] = []
    for kind in kinds:
        databases: Databases = (
            SqliteDatabases() if kind == "sqlite" else PostgresDatabases(arguments.postgres_url)
        )
        try:
            print(databases.describe(), flush=True)
            workers = 1 if kind == "sqlite" else arguments.workers
            for n in arguments.n:
                figures.extend(measure(databases, n, workers, arguments.originals))
        finally:
            databases.close()
    print()
    print(_table(figures))
    for figure in figures:
        if figure.database == "sqlite":
            per_minute = figure.tabkeeper_per_second * 60
            verdict = "met" if per_minute >= TARGET_PER_MINUTE else "MISSED"
            print(
                f"target {TARGET_PER_MINUTE:,} renewals/min on SQLite, N={figure.n:,}: "
                f"{verdict} ({per_minute:,.0f}/min)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
