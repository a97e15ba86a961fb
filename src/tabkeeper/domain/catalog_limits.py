"""What the books can hold, checked when a catalog is imported (issue 12 item 7).

Everything an invoice, its lines or a notice takes from the catalog must fit the columns
that store it, on SQLite (which accepts any length) and on PostgreSQL (which refuses it)
alike, so the check is made here, on the catalog, before anything is charged:

* plan and add-on names become line descriptions ("<name> (Jan 1 – Feb 1, prorated)",
  "Unused time on <name> (…)", "<name> × 3 (…)") and the description of a period's
  included credits ("<name>: included AI credits", `credit_grants.description`, 200): at
  most `NAME_MAX` characters, which leaves room for the longest prefix and period the
  description builder adds within `DESCRIPTION_MAX` (the `invoice_lines.description`
  column) and for the credits' suffix within `GRANT_DESCRIPTION_MAX`;
* codes (plans, add-ons, meters) are names of at most 64 characters (fields.name) and go
  to 64-character columns (`subscriptions.plan_code`, `subscription_addons.addon_code`);
* prices become `amount_minor` and invoice totals (32-bit integer columns on PostgreSQL):
  a plan or add-on price is at most `AMOUNT_MAX` minor units;
* unit prices become a line's `unit_amount` (a 40-character column): every decimal of a
  pricing config is at most `DECIMAL_TEXT_MAX` characters written out.

tests/unit/test_catalog_limits.py ties these numbers to the columns in db/tables.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from decimal import Decimal

from tabkeeper.domain import fields
from tabkeeper.domain.errors import InvalidConfig

DESCRIPTION_MAX = 300
"""The length of `invoice_lines.description` (db/tables.py)."""
GRANT_DESCRIPTION_MAX = 200
"""The length of `credit_grants.description` (db/tables_credits.py)."""
NAME_MAX = 160
"""The longest plan or add-on name: a line's description adds at most 140 characters to it
(prefix, quantity, period, "prorated"), the included credits' description 21."""
AMOUNT_MAX = 2**31 - 1
"""The largest amount in minor units an invoice column holds (INTEGER on PostgreSQL)."""
DECIMAL_TEXT_MAX = 40
"""The length of `invoice_lines.unit_amount` and `invoice_lines.quantity`."""


def check_invoice_limits(
    path: str,
    plans: dict[str, tuple[str, int, object]],
    addons: dict[str, tuple[str, int]],
) -> None:
    """Refuse (InvalidConfig, naming the path and the limit) a catalog whose plans or
    add-ons an invoice could not store. `plans` maps a code to (name, price in minor
    units, overage configs); `addons` a code to (name, price in minor units)."""
    for kind, entries in (("plans", plans), ("addons", addons)):
        for code, entry in entries.items():
            here = fields.at(fields.at(path, kind), code)
            name, minor = entry[0], entry[1]
            if len(name) > NAME_MAX:
                raise InvalidConfig(
                    fields.at(here, "name"),
                    f"at most {NAME_MAX} characters (invoice lines and credit grants are "
                    f"described with it), got {len(name)}",
                )
            if abs(minor) > AMOUNT_MAX:
                raise InvalidConfig(
                    fields.at(here, "price"),
                    f"at most {AMOUNT_MAX} in minor units (what an invoice holds), got {minor}",
                )
    for code, (_, _, overage) in plans.items():
        here = fields.at(fields.at(fields.at(path, "plans"), code), "overage")
        for where, value in _decimals(overage, here):
            written = f"{value:f}"
            if len(written) > DECIMAL_TEXT_MAX:
                raise InvalidConfig(
                    where,
                    f"at most {DECIMAL_TEXT_MAX} characters written out (an invoice line's "
                    f"unit amount), got {len(written)}",
                )


def _decimals(value: object, path: str) -> Iterator[tuple[str, Decimal]]:
    """Every Decimal inside `value` (mappings, sequences and dataclasses), with its path."""
    if isinstance(value, Decimal):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _decimals(item, fields.at(path, str(key)))
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from _decimals(item, fields.at(path, index))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _decimals(getattr(value, field.name), fields.at(path, field.name))


def fit_description(name: str, tail: str) -> str:
    """`name` followed by `tail`, within DESCRIPTION_MAX characters: a name too long for
    what follows it is cut and ends with "…" (import keeps names to NAME_MAX, so this is a
    last guard, never the usual case)."""
    room = DESCRIPTION_MAX - len(tail)
    if len(name) <= room:
        return name + tail
    return name[: max(room - 1, 0)] + "…" + tail
