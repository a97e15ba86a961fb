"""The worker's loop: the billing clock and the notice dispatcher, every few seconds.

`tabkeeper worker` runs it in the foreground; `tabkeeper serve` runs it in a thread beside
the API, so one process is a whole tabkeeper (DESIGN.md, entry points).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from tabkeeper.clock import Clock, SystemClock
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.settings import Settings
from tabkeeper.worker.clock import BillingClock

log = logging.getLogger("tabkeeper.worker")


def run_worker(
    engine: Engine,
    settings: Settings,
    provider: PaymentProvider,
    interval: float,
    stop: threading.Event,
    clock: Clock | None = None,
) -> None:
    """Tick until `stop` is set. An error in one tick is logged and the loop goes on: the
    work it was doing stays due and is tried again (INV-4)."""
    clock = clock or SystemClock()
    billing_clock = BillingClock(engine, provider, clock)
    dispatcher = Dispatcher(engine, clock, settings)
    while not stop.is_set():
        try:
            billing_clock.tick()
            dispatcher.tick(limit=100)
        except Exception:
            log.exception("a worker tick failed; the work stays due and is retried")
        stop.wait(interval)


def start_worker_thread(
    engine: Engine, settings: Settings, provider: PaymentProvider, interval: float
) -> threading.Event:
    """Run the loop in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(engine, settings, provider, interval, stop),
        name="tabkeeper-worker",
        daemon=True,
    )
    thread.start()
    return stop
