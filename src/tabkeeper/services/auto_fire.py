"""Firing an auto top-up (SPEC CRD-6; services/auto_top_ups.py says the whole of it): a
change that leaves the balance below the threshold, with none in flight, claims the one
top-up in flight and queues the billing clock's work that buys it. Kept apart (and light)
so that the uses' hot path imports it without the payment services.
"""

from __future__ import annotations

from tabkeeper.db import credit_store
from tabkeeper.db.tables_credits import CreditBalance
from tabkeeper.domain.spend import auto_fires
from tabkeeper.services.context import Billing
from tabkeeper.services.records import queue

WORK = "auto_top_up"
"""The billing clock's work that buys an auto top-up; also its invoice's source prefix."""


def _key(owner_id: int, epoch: int, b: Billing) -> str:
    """The key of an auto top-up in flight (its work's subject; its invoice's source is
    this key and the credits bought, `<key>:<credits>`)."""
    return f"{WORK}:{owner_id}:{epoch}:{b.now:%Y%m%dT%H%M%S.%f}"


def after_change(
    b: Billing, owner_id: int, balance: int, epoch: int, threshold: int | None, pending: str | None
) -> None:
    """CRD-6: a use or a hold (through the gate, the row locked) left `balance`: one top-up
    claimed and queued when it is below the threshold and none is in flight."""
    if not auto_fires(balance, threshold, pending):
        return
    key = _key(owner_id, epoch, b)
    credits = credit_store.claim_auto_top_up(b.session, owner_id, key)
    if credits is None:
        return
    queue(b, WORK, key, owner_id, b.now)


def fire_locked(b: Billing, row: CreditBalance) -> None:
    """CRD-6: `after_change` for a balance row the caller holds locked as an ORM row."""
    if auto_fires(row.balance, row.auto_threshold, row.auto_pending):
        row.auto_pending = _key(row.organization_id, row.epoch, b)
        b.session.flush()
        queue(b, WORK, row.auto_pending, row.organization_id, b.now)
