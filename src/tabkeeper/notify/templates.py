"""The e-mail of each notice kind (NOT-1, TRI-3): a subject and a plain text, from Jinja2
templates in notify/templates/.

One template per kind of notify/kinds.py (`<kind>.txt`), one shared by every usage kind
(`usage.txt`, which gets `meter` and `threshold`), and `_generic.txt` for any other kind:
a notice is never left without an e-mail. Each template extends `_base.txt` and fills two
blocks: `subject` (one line) and `body` (what happened, what to do).

The notice's payload is `data`; templates show its numbers where present and read well
without them (every field is optional). Fields they use: `used`, `included`, `limit`,
`unit`, `overage` (usage and limits), `ends_at`, `reason` (trial), `plan`, `from_plan`,
`period_end`, `grace_ends_at`, `retention_ends_at` (subscription), `invoice`,
`total_minor`, `amount_due_minor`, `amount_minor`, `currency`, `next_retry_at`
(invoices and payments), `numbers` (phone numbers), `next_grant_at` (credits).
Filters: `money(minor, currency)` ("30.00 USD") and `instant` ("2026-01-15 00:00 UTC").

A template that fails on a payload it did not expect (a list that is a number, ...) falls
back to the generic one, so a notice is always told; the generic one shows every field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.utc import parse_instant
from tabkeeper.notify.kinds import KINDS, usage_kind

GENERIC = "_generic.txt"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str


def template_name(kind: str) -> str:
    """The template file of a notice kind."""
    if usage_kind(kind) is not None:
        return "usage.txt"
    if kind in KINDS:
        return f"{kind}.txt"
    return GENERIC


def money(minor: object, currency: object) -> str:
    """Minor units as an amount of the currency ("4900", "USD" -> "49.00 USD")."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        return str(minor)
    if isinstance(currency, str):
        try:
            return str(Money(minor, Currency.of(currency)))
        except InvalidInput:
            pass
    return f"{minor} (in the currency's smallest unit)"


def instant(value: object) -> str:
    """An ISO 8601 instant as "2026-01-15 00:00 UTC"; anything else as it is."""
    moment = value
    if isinstance(value, str):
        try:
            moment = parse_instant(value)
        except InvalidInput:
            return value
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("tabkeeper.notify", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["money"] = money
    environment.filters["instant"] = instant
    return environment


def render_email(
    kind: str,
    data: Mapping[str, Any],
    *,
    organization: str,
    platform: str,
    happened_at: datetime | None = None,
    currency: str | None = None,
) -> RenderedEmail:
    """The e-mail telling a notice of `kind` with payload `data` to the owners and billing
    admins of `organization`. `currency` names the currency of amounts in minor units
    when the payload does not."""
    found = usage_kind(kind)
    context: dict[str, Any] = {
        "kind": kind,
        "data": dict(data),
        "organization": organization,
        "platform": platform,
        "happened_at": instant(happened_at) if happened_at is not None else "",
        "currency": data.get("currency") or currency,
        "meter": found[0] if found else "",
        "threshold": found[1] if found else 0,
    }
    name = template_name(kind)
    if name != GENERIC:
        try:
            return _render(_environment().get_template(name), context)
        except Exception:  # a payload the template did not expect: a notice is always told
            pass
    return _render(_environment().get_template(GENERIC), context)


def _render(template: Template, context: dict[str, Any]) -> RenderedEmail:
    subject = "".join(template.blocks["subject"](template.new_context(context)))
    text = template.render(context)
    return RenderedEmail(subject=" ".join(subject.split()), text=_tidy(text))


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """No trailing spaces, at most one empty line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)) + "\n"
