"""The worker's loop: the billing clock and the notice dispatcher, when work comes due.

`tabkeeper worker` runs it in the foreground; `tabkeeper serve` runs it in a thread beside
the API, so one process is a whole tabkeeper (DESIGN.md, entry points).

It does not poll. It asks when the next work is due (worker/wake.py, one read statement),
sleeps until then, and is woken sooner by any write committed in its own process (a
request that queues work or writes a notice). Work written by other processes is seen
within `interval` seconds, the longest it sleeps without looking. Woken, it lets a burst
of writes pass for `WAKE_GAP` first, so that under load it looks at most that often.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine

from tabkeeper.clock import Clock, SystemClock
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.settings import Settings
from tabkeeper.worker.clock import BillingClock
from tabkeeper.worker.wake import Alarm, next_due_at, ring_on_commit

log = logging.getLogger("tabkeeper.worker")

WAKE_GAP = 0.2
"""Seconds between a wake-up by a commit and the look for work it causes (writes that
come meanwhile are seen by the same look)."""


def run_worker(
    engine: Engine,
    settings: Settings,
    provider: PaymentProvider,
    interval: float,
    stop: threading.Event,
    clock: Clock | None = None,
    alarm: Alarm | None = None,
) -> None:
    """Do due work until `stop` is set (ring `alarm` too, to stop at once). An error is
    logged and the loop goes on after `interval`: the work it was doing stays due and is
    tried again (INV-4)."""
    clock = clock or SystemClock()
    alarm = alarm or Alarm()
    lease = timedelta(seconds=settings.work_lease_seconds)
    billing_clock = BillingClock(engine, provider, clock, lease=lease)
    billing_clock.stopping = stop.is_set  # SIGTERM: finish the piece of work, then stop
    dispatcher = Dispatcher(engine, clock, settings)
    stop_ringing = ring_on_commit(engine, alarm)
    try:
        while not stop.is_set():
            alarm.clear()  # before the look: a commit after it wakes the wait below
            try:
                now = clock.now()
                due = next_due_at(engine, now, billing_clock.lease, dispatcher.lease)
                if due is None or due > now:
                    sleep = interval if due is None else (due - now).total_seconds()
                    pause = min(interval, sleep)
                elif billing_clock.tick() + dispatcher.tick(limit=100) > 0:
                    continue  # more may be due at once
                else:
                    pause = WAKE_GAP  # due, but held by another worker: look again soon
            except Exception:
                log.exception("a worker tick failed; the work stays due and is retried")
                pause = interval
            if alarm.wait(pause) and not stop.is_set():
                stop.wait(WAKE_GAP)
    finally:
        stop_ringing()


class WorkerThread:
    """The loop in a daemon thread (`tabkeeper serve`); `stop()` ends it."""

    def __init__(
        self, engine: Engine, settings: Settings, provider: PaymentProvider, interval: float
    ) -> None:
        self._stop = threading.Event()
        self.alarm = Alarm()
        self.thread = threading.Thread(
            target=run_worker,
            args=(engine, settings, provider, interval, self._stop),
            kwargs={"alarm": self.alarm},
            name="tabkeeper-worker",
            daemon=True,
        )
        self.thread.start()

    def stop(self, wait: float = 0.0) -> None:
        """Stop after the piece of work being done; wait up to `wait` seconds for it."""
        self._stop.set()
        self.alarm.ring()
        if wait:
            self.thread.join(wait)


def start_worker_thread(
    engine: Engine, settings: Settings, provider: PaymentProvider, interval: float
) -> WorkerThread:
    """Run the loop in a daemon thread; call `stop()` on the result to end it."""
    return WorkerThread(engine, settings, provider, interval)
