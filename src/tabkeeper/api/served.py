"""The application as `tabkeeper serve` runs it (OPS-1): the API, with the billing clock
beside it in a thread when asked, started and stopped with the server's lifespan.

With `--workers N` (N > 1) uvicorn's process manager starts N API processes, each a fresh
interpreter that calls `app()` (the factory: uvicorn imports it by name); `serve` passes
what they need in the environment (SERVE_CLOCK, SERVE_INTERVAL, the TABKEEPER_* settings
and PROMETHEUS_MULTIPROC_DIR for the metrics). With one process `serve` calls `served()`
itself.

Stopping (SIGTERM): uvicorn stops taking connections and finishes the requests in flight
(the app is marked draining first, so /health/ready answers 503: api/limits.py), then
the lifespan ends, which stops the billing clock after the piece of work it is doing and
waits for that (up to CLOCK_STOP_WAIT seconds).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabkeeper.api.app import create_app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import make_engine
from tabkeeper.payments.choice import payment_provider
from tabkeeper.settings import Settings
from tabkeeper.worker.loop import WorkerThread

SERVE_CLOCK = "TABKEEPER_SERVE_CLOCK"
SERVE_INTERVAL = "TABKEEPER_SERVE_INTERVAL"
SWITCH_INTERVAL = 0.0001
"""Seconds a thread may keep the interpreter while another waits for it (Python's default
is 0.005). The check reads on the event loop while worker threads count batches, and
each of a batch's database calls gives the interpreter up and waits to get it back:
with turns of 0.5 ms, 2 clients checking held ingestion to 1,090 events/s (bench/mixed.py,
SQLite), with 0.1 ms it got 2,970 while the checks kept a p99 of 6.4 ms (4.2 before);
threads alone (session starts) cost about 5% more CPU."""
FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full ones of Python's garbage
collector (its default is 10); see `settle_the_heap`."""
CLOCK_STOP_WAIT = 60.0
"""Seconds the end of the lifespan waits for the billing clock's piece of work."""


class ClockBeside:
    """Runs the billing clock (worker/loop.py) in a thread from the lifespan's startup to
    its shutdown."""

    def __init__(
        self, app: ASGIApp, engine: Engine, settings: Settings, provider: Any, interval: float
    ) -> None:
        self.app = app
        self.engine = engine
        self.settings = settings
        self.provider = provider
        self.interval = interval
        self.thread: WorkerThread | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self.thread is None:
                self.thread = WorkerThread(self.engine, self.settings, self.provider, self.interval)
            elif message["type"] == "lifespan.shutdown" and self.thread is not None:
                thread, self.thread = self.thread, None
                await anyio.to_thread.run_sync(thread.stop, CLOCK_STOP_WAIT)
            return message

        await self.app(scope, watched, send)


def served(settings: Settings, engine: Engine, *, clock: bool, interval: float) -> ASGIApp:
    """The API on `engine`, with the billing clock beside it when `clock`."""
    provider = payment_provider(settings, engine, SystemClock())
    application: ASGIApp = create_app(settings, engine, provider=provider)
    sys.setswitchinterval(SWITCH_INTERVAL)
    settle_the_heap()
    if clock:
        application = ClockBeside(application, engine, settings, provider, interval)
    return application


def settle_the_heap() -> None:
    """Python's garbage collector, set for a server (LIM-1: the check's tail under
    ingestion). A full collection walks every object the process holds: the modules,
    SQLAlchemy's and pydantic's structures, some hundreds of thousands, about 200 ms
    on the bench machine, the interpreter stopped meanwhile. Batches of 1,000 events
    create objects that outlive a couple of young collections, which counts toward the
    next full one: under steady ingestion one came every half second, and the check's
    p99 was their pause (bench/mixed.py, PostgreSQL: 183 ms; 29 ms with the collector
    off). So what the process holds once started is frozen (`gc.freeze`: kept out of
    every collection; it is never garbage), and full collections come ten times less
    often: 38 ms, the rest being the two CPUs shared with PostgreSQL and the clients.
    Cyclic garbage is still collected, later."""
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def app() -> ASGIApp:
    """The factory each API process of `serve --workers N` calls."""
    settings = Settings()
    engine = make_engine(settings.database_url)
    clock = os.environ.get(SERVE_CLOCK) == "1"
    return served(settings, engine, clock=clock, interval=float(os.environ[SERVE_INTERVAL]))
