"""OPS-1: a worker asked to stop (SIGTERM sets `BillingClock.stopping`) finishes the piece
of work in hand and starts no other; what it left is done by the next run, once (INV-4)."""

from __future__ import annotations

from tabkeeper.db.tables import Invoice
from tests.integration.conftest import FEB_1, World


def test_ops1_a_stopping_worker_finishes_the_work_in_hand_and_starts_no_more(
    world: World,
) -> None:
    """OPS-1: stopping before any work: nothing done; stopping after the first piece
    (a renewal): its invoice is written whole, the collection not started; the next run
    collects it, and the totals are those of one uninterrupted run."""
    world.organization("acme")
    world.subscribe("acme")
    world.clock.set(FEB_1)
    stopped = world.worker()
    stopped.stopping = lambda: True
    assert stopped.tick() == 0
    assert world.invoices() == 1

    done: list[str] = []
    worker = world.worker()
    worker.checkpoint = done.append
    worker.stopping = lambda: bool(done)  # asked to stop during the first piece of work
    assert worker.tick() == 1
    assert done == ["period_end"]
    assert world.invoices() == 2 and world.charges() == 1  # renewed, not collected yet
    assert world.invoices(Invoice.status == "open") == 1

    assert world.worker().tick() == 1  # the collection
    assert (world.invoices(), world.charges()) == (2, 2)
    assert world.invoices(Invoice.status == "open") == 0
