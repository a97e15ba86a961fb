"""The bare-database baseline of the renewals bench: the rows of a renewal written with
plain SQL through the same driver (sqlite3 or psycopg, from the same engine, so with the
same connection settings), no ORM, no services.

Per renewal, in its own transaction (BEGIN IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on
PostgreSQL, as the billing clock does): select the due row, take the platform's next
invoice number, insert the invoice and its line, move the subscription to its next
period, insert the `invoice.issued` notice, mark the work done. Then a second transaction
records the charge: the sandbox's charge row, the payment attempt, the invoice paid.
It computes nothing (the amounts are the plan's price), so it is the floor a renewal
costs in the database and the driver.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from renewals_seed import ANCHOR, NEXT_PERIOD_END, PERIOD_END, PLAN, TERMS, THE_PLAN
from sqlalchemy import Engine

from tabkeeper.domain.utc import format_instant

_PRICE_MINOR = THE_PLAN.price.minor
_DESCRIPTION = f"{THE_PLAN.name} (Feb 1 – Mar 1)"

_SELECT_DUE = (
    "SELECT id, organization_id, subject_key FROM due_work"
    " WHERE status = 'pending' AND kind = 'period_end' AND due_at <= %s"
    " ORDER BY due_at, id LIMIT 1"
)
_NEXT_NUMBER = (
    "UPDATE platforms SET last_invoice_number = last_invoice_number + 1"
    " WHERE id = %s RETURNING last_invoice_number"
)
_INVOICE = (
    "INSERT INTO invoices (platform_id, organization_id, source_key, number, status, currency,"
    " total_minor, credit_applied_minor, amount_due_minor, issued_at, period_start, period_end)"
    " VALUES (%s, %s, %s, %s, 'open', %s, %s, 0, %s, %s, %s, %s) RETURNING id"
)
_LINE = (
    "INSERT INTO invoice_lines (invoice_id, position, kind, description, quantity, unit_amount,"
    " amount_minor, period_start, period_end, details)"
    " VALUES (%s, 0, 'subscription', %s, '1', %s, %s, %s, %s, %s)"
)
_PERIOD = (
    "UPDATE subscriptions SET period_index = period_index + 1, period_start = %s,"
    " period_end = %s WHERE organization_id = %s"
)
_NOTICE = (
    "INSERT INTO notices (platform_id, organization_id, kind, dedupe_key, payload, created_at)"
    " VALUES (%s, %s, 'invoice.issued', %s, %s, %s)"
)
_DONE = "UPDATE due_work SET status = 'done', done_at = %s WHERE id = %s"
_CARD = (
    "SELECT token FROM payment_methods WHERE organization_id = %s AND is_default"
    " ORDER BY id DESC LIMIT 1"
)
_CHARGE = (
    "INSERT INTO sandbox_charges (charge_id, idempotency_key, customer, token, amount_minor,"
    " currency, description, succeeded, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_ATTEMPT = (
    "INSERT INTO payment_attempts (invoice_id, attempt_no, idempotency_key, status,"
    " amount_minor, provider, provider_reference, attempted_at)"
    " VALUES (%s, 1, %s, 'succeeded', %s, 'sandbox', %s, %s)"
)
_PAID = "UPDATE invoices SET status = 'paid', paid_at = %s WHERE id = %s"


class BareRenewals:
    """Renews every subscription due by PERIOD_END with plain SQL; `run()` counts them."""

    def __init__(self, engine: Engine, platform_id: int) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.platform_id = platform_id
        self.connection: Any = engine.raw_connection()
        self.currency = TERMS.currency.code

    def close(self) -> None:
        self.connection.close()

    def _sql(self, statement: str) -> str:
        if self.sqlite:
            return statement.replace("%s", "?").replace(" FOR UPDATE SKIP LOCKED", "")
        return statement

    def _time(self, moment: datetime) -> Any:
        """As the tables store it: SQLite a naive UTC text (db/types.py), else aware."""
        if self.sqlite:
            return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return moment

    def _run(self, cursor: Any, statement: str, params: Sequence[Any]) -> Any:
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def _begin(self, cursor: Any) -> None:
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")

    def run(self) -> int:
        done = 0
        while self.renew_one():
            done += 1
        return done

    def renew_one(self) -> bool:
        connection, now = self.connection, self._time(PERIOD_END)
        cursor = connection.cursor()
        try:
            self._begin(cursor)
            due = _SELECT_DUE + ("" if self.sqlite else " FOR UPDATE SKIP LOCKED")
            row = self._run(cursor, due, [now]).fetchone()
            if row is None:
                connection.rollback()
                return False
            work_id, organization_id, subject_key = row
            subscription_id = subject_key.split(":")[1]
            number = self._run(cursor, _NEXT_NUMBER, [self.platform_id]).fetchone()[0]
            number_text = f"{TERMS.invoice_prefix}-{number:06d}"
            end = NEXT_PERIOD_END
            source = f"renewal:{subscription_id}:{format_instant(ANCHOR)}:1"
            invoice_id = self._run(
                cursor,
                _INVOICE,
                [self.platform_id, organization_id, source, number_text, self.currency,
                 _PRICE_MINOR, _PRICE_MINOR, now, now, self._time(end)],
            ).fetchone()[0]  # fmt: skip
            self._run(
                cursor,
                _LINE,
                [invoice_id, _DESCRIPTION, THE_PLAN.price.major_str(), _PRICE_MINOR, now,
                 self._time(end), json.dumps({"plan": PLAN})],
            )  # fmt: skip
            self._run(cursor, _PERIOD, [now, self._time(end), organization_id])
            payload = json.dumps({"invoice": number_text, "total_minor": _PRICE_MINOR})
            notice = [self.platform_id, organization_id, f"invoice:{invoice_id}", payload, now]
            self._run(cursor, _NOTICE, notice)
            self._run(cursor, _DONE, [now, work_id])
            connection.commit()
            self._charge(cursor, organization_id, invoice_id, number_text, now)
            return True
        finally:
            cursor.close()

    def _charge(
        self, cursor: Any, organization_id: int, invoice_id: int, number: str, now: Any
    ) -> None:
        self._begin(cursor)
        token = self._run(cursor, _CARD, [organization_id]).fetchone()[0]
        charge_id = f"ch_sbx_{secrets.token_hex(12)}"
        key = f"tk_bench_{invoice_id}_1"
        self._run(
            cursor,
            _CHARGE,
            [charge_id, key, f"org_{organization_id}", token, _PRICE_MINOR, self.currency,
             f"Invoice {number}", True, now],
        )  # fmt: skip
        self._run(cursor, _ATTEMPT, [invoice_id, key, _PRICE_MINOR, charge_id, now])
        self._run(cursor, _PAID, [now, invoice_id])
        self.connection.commit()
