"""The starting point of the renewals bench: one platform with a monthly plan (no trial)
and N organizations, each subscribed at the same anchor through a paid checkout.

The first organizations are subscribed through the services, as `tabkeeper simulate`
does it (create, quote, the sandbox's checkout, complete). Doing that for 10,000 takes
minutes, so the rest are copies of the last of them, written straight into the tables
with the driver's multi-row inserts: every row that organization has, with its keys and
ids swapped for the copy's own. A table the copier does not know, or a row it cannot
re-key, stops the bench; renewals_checks.py then proves the copies identical to the
originals, before the run and after it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.orm import Session

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.schema import METADATA
from tabkeeper.db.tables import CheckoutSession, Platform
from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.money import Money
from tabkeeper.domain.periods import boundary
from tabkeeper.domain.terms import build_terms
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services import organizations, subscriptions
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.context import CatalogStore, billing
from tabkeeper.services.payments import customer_of

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
PLATFORM = "bench"
PLAN = "starter"
SETTINGS: dict[str, Any] = {"currency": "USD", "trial": None}
CATALOG: dict[str, Any] = {
    "meters": {
        "minutes": {
            "kind": "sum",
            "event": "call.ended",
            "field": "duration_seconds",
            "unit_seconds": 60,
            "rounding": "per_event_up",
        }
    },
    "plans": {
        PLAN: {
            "name": "Starter",
            "price": "49.00",
            "interval": "month",
            "includes": {"minutes": 500},
            "overage": {"minutes": {"model": "per_unit", "unit_price": "0.10"}},
            "limits": {"agents": 1, "seats": 2, "phone_numbers": 1},
            "rank": 1,
        }
    },
}
TERMS = build_terms(SETTINGS)
THE_PLAN = build_catalog(CATALOG, TERMS.currency).plan(PLAN)
PERIOD_END = boundary(ANCHOR, THE_PLAN.interval, 1)
"""Where the first period of every subscription ends: the renewal moment."""
NEXT_PERIOD_END = boundary(ANCHOR, THE_PLAN.interval, 2)

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Seeded:
    platform_id: int
    organizations: int
    through_services: int
    """How many were subscribed through the services; the others are copies."""


def org_code(index: int) -> str:
    """Fixed width, so that no code is the beginning of another (they are swapped as text)."""
    return f"org-{index:06d}"


def seed(engine: Engine, n: int, through_services: int) -> Seeded:
    """A platform and `n` subscribed organizations, the first `through_services` (at least
    one: the copies need an original) through the services."""
    clock = SimulatedClock(ANCHOR)
    store = CatalogStore()
    with transaction(engine) as session:
        platform = ensure_platform(session, PLATFORM, "Bench", ANCHOR, SETTINGS)
        import_catalog(session, platform, CATALOG, ANCHOR)
        platform_id = platform.id
    originals = max(1, min(n, through_services))
    provider = SandboxProvider(engine, clock)
    organization_id = 0
    for index in range(originals):
        organization_id = _subscribe(engine, provider, store, platform_id, org_code(index))
    if n > originals:
        with transaction(engine) as session:
            _copy(session, platform_id, organization_id, range(originals, n))
    return Seeded(platform_id, n, originals)


def _subscribe(
    engine: Engine,
    provider: SandboxProvider,
    store: CatalogStore,
    platform_id: int,
    code: str,
) -> int:
    """Subscribe a new organization to PLAN through a paid checkout, as simulate.py does."""
    with billing(engine, platform_id, ANCHOR, store) as b:
        organization = organizations.create_organization(b, code, {"owner": "owner"})
        quote = subscriptions.quote_subscription(b, organization, PLAN, {})
        customer, organization_id = customer_of(organization), organization.id
    started = provider.start_checkout(
        customer,
        Money(quote.amount_due_minor, TERMS.currency),
        f"subscribe:{code}:{PLAN}",
        "/billing",
    )
    with billing(engine, platform_id, ANCHOR, store) as b:
        subscriptions.record_checkout(b, quote, provider.name, started.id, started.url)
    card, result = provider.complete_checkout(started.id, "card_ok")
    with billing(engine, platform_id, ANCHOR, store) as b:
        checkout = b.session.scalars(
            select(CheckoutSession).where(CheckoutSession.provider_checkout_id == started.id)
        ).one()
        subscriptions.complete_subscription(b, checkout, card, result)
    return organization_id


# -- copies ---------------------------------------------------------------------------


def _table(name: str) -> Table:
    return METADATA.tables[name]


def _rows(session: Session, name: str, column: str, value: object) -> list[Row]:
    table = _table(name)
    found = session.execute(
        select(table).where(table.c[column] == value).order_by(*table.primary_key.columns)
    ).mappings()
    return [dict(row) for row in found]


def _one(rows: Sequence[Row], what: str) -> Row:
    if len(rows) != 1:
        raise SystemExit(f"seed: the original has {len(rows)} {what} rows; the copier expects 1")
    return rows[0]


def _swap(text: str, pairs: Mapping[str, str]) -> str:
    for old, new in pairs.items():
        text = text.replace(old, new)
    return text


def _new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


@dataclass
class _Original:
    """The rows of the organization the copies are made of, by table."""

    rows: dict[str, list[Row]]

    def one(self, table: str) -> Row:
        return _one(self.rows[table], table)


COPIED = (
    "organizations",
    "members",
    "sandbox_payment_methods",
    "sandbox_charges",
    "sandbox_checkouts",
    "checkout_sessions",
    "payment_methods",
    "subscriptions",
    "subscription_history",
    "invoices",
    "invoice_lines",
    "payment_attempts",
    "notices",
    "due_work",
)


def _original(session: Session, organization_id: int) -> _Original:
    rows: dict[str, list[Row]] = {}
    organization = _one(_rows(session, "organizations", "id", organization_id), "organization")
    customer = customer_of_id(organization_id)
    rows["organizations"] = [organization]
    for name, table in METADATA.tables.items():
        if name == "organizations":
            continue
        if "organization_id" in table.c:
            rows[name] = _rows(session, name, "organization_id", organization_id)
        elif "customer" in table.c:
            rows[name] = _rows(session, name, "customer", customer)
    subscription = _one(rows["subscriptions"], "subscription")
    invoice = _one(rows["invoices"], "invoice")
    rows["subscription_history"] = _rows(
        session, "subscription_history", "subscription_id", subscription["id"]
    )
    rows["subscription_addons"] = _rows(
        session, "subscription_addons", "subscription_id", subscription["id"]
    )
    rows["scheduled_changes"] = _rows(
        session, "scheduled_changes", "subscription_id", subscription["id"]
    )
    rows["invoice_lines"] = _rows(session, "invoice_lines", "invoice_id", invoice["id"])
    rows["payment_attempts"] = _rows(session, "payment_attempts", "invoice_id", invoice["id"])
    unknown = sorted(
        name for name, found in rows.items() if found and name not in COPIED and not _plain(name)
    )
    if unknown:
        raise SystemExit(f"seed: the original has rows in {unknown}; teach the copier them")
    return _Original(rows)


def _pointing_at(name: str, organizations: list[int]) -> Callable[[int, Row], Row]:
    """Copies of a _plain table's rows for the i-th of `organizations`."""
    columns = [key.parent.name for key in METADATA.tables[name].foreign_keys]
    return lambda i, row: {**row, **dict.fromkeys(columns, organizations[i])}


def _plain(name: str) -> bool:
    """A table whose rows point at their organization only: copied with that swapped."""
    keys = METADATA.tables[name].foreign_keys
    return bool(keys) and all(key.target_fullname == "organizations.id" for key in keys)


def customer_of_id(organization_id: int) -> str:
    return f"org_{organization_id}"


def _insert(session: Session, name: str, rows: list[Row]) -> list[int]:
    """Insert `rows` (without their ids) in one statement; their new ids, in order."""
    if not rows:
        return []
    table = _table(name)
    values = [{k: v for k, v in row.items() if k != "id"} for row in rows]
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, values).scalars())


def _each(
    session: Session, name: str, original: _Original, count: int, make: Callable[[int, Row], Row]
) -> list[int]:
    """One copy of each of the original's `name` rows per copy; ids of the first of each."""
    templates = original.rows[name]
    rows = [make(i, template) for i in range(count) for template in templates]
    ids = _insert(session, name, rows)
    return ids[:: len(templates)] if templates else []


def _copy(session: Session, platform_id: int, organization_id: int, indexes: range) -> None:
    """Copy the organization `organization_id` once per index of `indexes`."""
    original = _original(session, organization_id)
    o_org = original.one("organizations")
    o_checkout = original.one("checkout_sessions")
    o_invoice = original.one("invoices")
    o_subscription = original.one("subscriptions")
    o_card = original.one("sandbox_payment_methods")["token"]
    o_charge = original.one("sandbox_charges")["charge_id"]
    o_cs = o_checkout["provider_checkout_id"]
    count = len(indexes)
    codes = [org_code(i) for i in indexes]
    cs = [_new_id("cs") for _ in indexes]
    pm = [_new_id("pm") for _ in indexes]
    ch = [_new_id("ch") for _ in indexes]

    def swap(i: int, text: str) -> str:
        return _swap(text, {o_cs: cs[i], o_card: pm[i], o_charge: ch[i], o_org["code"]: codes[i]})

    orgs = _each(
        session, "organizations", original, count,
        lambda i, r: {**r, "code": codes[i], "name": codes[i]},
    )  # fmt: skip
    customers = [customer_of_id(org) for org in orgs]
    _each(session, "members", original, count, lambda i, r: {**r, "organization_id": orgs[i]})
    _each(
        session, "sandbox_payment_methods", original, count,
        lambda i, r: {**r, "token": pm[i], "customer": customers[i]},
    )  # fmt: skip
    _each(
        session, "sandbox_charges", original, count,
        lambda i, r: {
            **r, "charge_id": ch[i], "token": pm[i], "customer": customers[i],
            "idempotency_key": swap(i, r["idempotency_key"]),
            "description": swap(i, r["description"]),
        },
    )  # fmt: skip
    _each(
        session, "sandbox_checkouts", original, count,
        lambda i, r: {
            **r, "checkout_id": cs[i], "customer": customers[i], "token": pm[i],
            "charge_id": ch[i], "reference": swap(i, r["reference"]),
        },
    )  # fmt: skip
    _each(
        session, "checkout_sessions", original, count,
        lambda i, r: {
            **r, "organization_id": orgs[i], "provider_checkout_id": cs[i],
            "url": swap(i, r["url"]),
        },
    )  # fmt: skip
    methods = _each(
        session, "payment_methods", original, count,
        lambda i, r: {**r, "organization_id": orgs[i], "token": pm[i]},
    )  # fmt: skip
    subs = _each(
        session, "subscriptions", original, count, lambda i, r: {**r, "organization_id": orgs[i]}
    )
    _each(
        session, "subscription_history", original, count,
        lambda i, r: {**r, "subscription_id": subs[i]},
    )  # fmt: skip
    first_number = session.execute(
        select(Platform.last_invoice_number).where(Platform.id == platform_id)
    ).scalar_one()
    numbers = [f"{TERMS.invoice_prefix}-{first_number + 1 + i:06d}" for i in range(count)]
    invoices = _each(
        session, "invoices", original, count,
        lambda i, r: {
            **r, "organization_id": orgs[i], "number": numbers[i],
            "source_key": swap(i, r["source_key"]),
        },
    )  # fmt: skip
    _each(session, "invoice_lines", original, count, lambda i, r: {**r, "invoice_id": invoices[i]})
    o_method = original.one("payment_methods")["id"]

    def attempt(i: int, r: Row) -> Row:
        method = r["payment_method_id"]
        if method not in (None, o_method):
            raise SystemExit("seed: the original's payment attempt names another card")
        return {
            **r, "invoice_id": invoices[i], "idempotency_key": swap(i, r["idempotency_key"]),
            "provider_reference": swap(i, r["provider_reference"] or "") or None,
            "payment_method_id": None if method is None else methods[i],
        }  # fmt: skip

    _each(session, "payment_attempts", original, count, attempt)

    def rekey(old: str, new: str, text: str) -> str:
        """`text` with the whole-field id `old` (as in "invoice:12") made `new`."""
        head, _, tail = text.partition(":")
        first, sep, rest = tail.partition(":")
        if first != old:
            raise SystemExit(f"seed: cannot re-key {text!r}; teach the copier this key")
        return f"{head}:{new}{sep}{rest}"

    def notice(i: int, r: Row) -> Row:
        payload = dict(r["payload"])
        if payload.get("invoice") == o_invoice["number"]:
            payload["invoice"] = numbers[i]
        key = rekey(str(o_invoice["id"]), str(invoices[i]), r["dedupe_key"])
        return {**r, "organization_id": orgs[i], "dedupe_key": key, "payload": payload}

    _each(session, "notices", original, count, notice)
    _each(
        session, "due_work", original, count,
        lambda i, r: {
            **r, "organization_id": orgs[i],
            "subject_key": rekey(str(o_subscription["id"]), str(subs[i]), r["subject_key"]),
        },
    )  # fmt: skip
    for name in sorted(set(original.rows) - set(COPIED)):
        _each(session, name, original, count, _pointing_at(name, orgs))
    session.execute(
        update(Platform)
        .where(Platform.id == platform_id)
        .values(last_invoice_number=first_number + count)
    )
