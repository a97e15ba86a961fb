"""What the renewals bench checks, never timed.

`fingerprints` describes each organization's billing rows with their ids left out and
the digits of their keys blanked ("invoice:17" reads "invoice:#"), so that two
organizations treated alike have equal fingerprints. Every organization of the bench is
subscribed to the same plan at the same anchor, so after seeding and again after the run
there must be exactly one fingerprint: the copies behave as the organizations subscribed
through the services did (renewals_seed.py).

`verify_renewed` checks the run itself: N renewal invoices, each paid, N charges at the
sandbox, no duplicates, gapless numbers, no work left.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from tabkeeper.db.schema import METADATA
from tabkeeper.db.tables import DueWork, Invoice, PaymentAttempt, Platform
from tabkeeper.payments.sandbox_store import SandboxCharge

_RANDOM = re.compile(r"sbx_[0-9a-f]+")
_DIGITS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z|\d+")
_LINKS = {"invoice_id": "invoices", "subscription_id": "subscriptions"}
_ID_KEYS = {"subscription", "organization", "invoice_id"}
"""Payload entries that hold ids."""

Fingerprint = tuple[tuple[str, tuple[str, ...]], ...]


class CheckFailed(SystemExit):
    """A check of the bench failed: the figures of that run mean nothing."""


def _shape(text: str) -> str:
    """`text` without what differs between alike organizations: random ids and numbers
    (instants, as in "period_end:4:2026-02-01T00:00:00Z:1", are kept)."""
    text = _RANDOM.sub("sbx_*", text)
    return _DIGITS.sub(lambda m: m[0] if "T" in m[0] else "#", text)


def _value(key: str, value: Any) -> str:
    if isinstance(value, str):
        return _shape(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        inner = (f"{k}={'#' if k in _ID_KEYS else _value(k, v)}" for k, v in sorted(value.items()))
        return "{" + ", ".join(inner) + "}"
    return repr(value)


def _describe(row: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={_value(k, v)}"
        for k, v in sorted(row.items())
        if k != "id" and not (k.endswith("_id") and not isinstance(v, str))
    )


def _owners(connection: Connection, table: str) -> dict[int, int]:
    """Which organization each row of `table` (invoices, subscriptions) belongs to."""
    t = METADATA.tables[table]
    return dict(connection.execute(select(t.c.id, t.c.organization_id)).tuples().all())


def fingerprints(engine: Engine) -> dict[int, Fingerprint]:
    """Every organization's billing rows, ids left out, keys shaped, by organization id."""
    found: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    with engine.connect() as connection:
        owners = {link: _owners(connection, table) for link, table in _LINKS.items()}
        for name, table in sorted(METADATA.tables.items()):
            if name == "organizations":
                column = "id"
            elif "organization_id" in table.c:
                column = "organization_id"
            elif "customer" in table.c:
                column = "customer"
            else:
                column = next((c for c in _LINKS if c in table.c), "")
            if not column:
                continue  # platform-wide: platforms, catalog versions
            for row in connection.execute(select(table)).mappings():
                owner = row[column]
                if column == "customer":
                    owner = int(str(owner).removeprefix("org_"))
                elif column in _LINKS:
                    owner = owners[column][owner]
                found[owner][name].append(_describe(dict(row)))
    return {
        org: tuple((name, tuple(sorted(rows))) for name, rows in sorted(tables.items()))
        for org, tables in found.items()
    }


def require_alike(engine: Engine, moment: str, n: int, originals: int) -> None:
    """All `n` organizations have one fingerprint: the copies and the `originals`
    (organization ids 1..originals, subscribed through the services) are treated alike."""
    prints = fingerprints(engine)
    if len(prints) != n:
        raise CheckFailed(f"{moment}: {len(prints)} organizations have rows, expected {n}")
    groups: dict[Fingerprint, list[int]] = defaultdict(list)
    for org, fingerprint in prints.items():
        groups[fingerprint].append(org)
    if len(groups) == 1:
        return
    ordered = sorted(groups.items(), key=lambda item: min(item[1]))
    first, other = ordered[0], ordered[1]
    detail = _difference(first[0], other[0])
    sizes = ", ".join(f"{len(orgs)} like org {min(orgs)}" for _, orgs in ordered)
    raise CheckFailed(
        f"{moment}: organizations differ ({sizes}; {originals} through the services): {detail}"
    )


def _difference(a: Fingerprint, b: Fingerprint) -> str:
    tables_a, tables_b = dict(a), dict(b)
    for name in sorted(set(tables_a) | set(tables_b)):
        rows_a, rows_b = tables_a.get(name, ()), tables_b.get(name, ())
        if rows_a != rows_b:
            only_a = sorted(set(rows_a) - set(rows_b))
            only_b = sorted(set(rows_b) - set(rows_a))
            return f"{name}: {only_a or len(rows_a)} versus {only_b or len(rows_b)}"
    return "same rows"  # pragma: no cover - groups differ, so some table does


def verify_renewed(engine: Engine, n: int, until: datetime) -> None:
    """After the run: N renewal invoices, each paid; N renewal charges at the sandbox, all
    succeeded, one per invoice; gapless invoice numbers; no work left due by `until`."""
    with engine.connect() as connection:

        def count(*what: Any) -> int:
            return int(connection.execute(select(func.count()).where(*what)).scalar_one())

        renewal = Invoice.source_key.startswith("renewal:")
        checks = {
            "renewal invoices": count(renewal),
            "renewal invoices paid": count(renewal, Invoice.status == "paid"),
            "organizations with a renewal invoice": int(
                connection.execute(
                    select(func.count(func.distinct(Invoice.organization_id))).where(renewal)
                ).scalar_one()
            ),
            "renewal payment attempts succeeded": count(
                PaymentAttempt.status == "succeeded",
                PaymentAttempt.invoice_id.in_(select(Invoice.id).where(renewal)),
            ),
            "sandbox charges for invoices": count(
                SandboxCharge.idempotency_key.startswith("tk_"), SandboxCharge.succeeded
            ),
            "distinct charged invoices": int(
                connection.execute(
                    select(func.count(func.distinct(SandboxCharge.description))).where(
                        SandboxCharge.idempotency_key.startswith("tk_")
                    )
                ).scalar_one()
            ),
        }
        wrong: dict[str, object] = {what: got for what, got in checks.items() if got != n}
        invoices = count(Invoice.id.is_not(None))
        numbers = int(
            connection.execute(select(func.count(func.distinct(Invoice.number)))).scalar_one()
        )
        counter = connection.execute(select(func.sum(Platform.last_invoice_number))).scalar_one()
        if not invoices == numbers == counter == 2 * n:
            wrong["invoices, distinct numbers, last number (expected 2N)"] = (
                invoices,
                numbers,
                counter,
            )
        left = count(DueWork.status.in_(("pending", "running")), DueWork.due_at <= until)
        if left:
            wrong["work left due"] = left
    if wrong:
        raise CheckFailed(f"the run is wrong (expected {n} each): {wrong}")
