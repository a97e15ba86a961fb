"""Corrections of finalized invoices (INV-5), as pure rules: what a credit note may credit
and where its money goes; what account credit a grant may add.

A credit note credits either an amount of the invoice as a whole or amounts of some of
its lines (by 0-based index), each a positive integer in minor units:
- a line is credited at most what is left of it: its amount less what earlier credit
  notes credited on it (a line of zero or negative amount has nothing to credit);
- the credit note's total (the sum of its lines) is at most what is left of the invoice:
  its total less what every earlier credit note credited, whatever their kind.

Where the money goes (`total = refund + credited + applied`):
- an open invoice (nothing collected): the credit is taken off its amount due
  (`applied`); what goes beyond the amount due (the invoice was partly settled by
  account credit) goes back to the account (`credited`). A refund is refused: nothing
  was collected to refund. The invoice's lines and total never change (INV-2);
- a paid invoice with `refund`: up to what the provider collected for it and has not yet
  refunded goes back to the card (`refund`), the rest (paid by account credit, or out of
  band) to the account (`credited`); without `refund`: all of it to the account.
Only an open or paid invoice can be credited: a void or uncollectible invoice owes
nothing, a draft is not finalized.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money

MAX_MINOR = 2_147_483_647
"""The largest amount or balance stored (a 32-bit integer column on every database)."""
DESCRIPTION_LENGTH = 300
"""Of a credit note line's description (as of an invoice line's)."""
CREDITABLE = ("open", "paid")
_NO_CURRENCY = Currency("XXX", 0)
"""For splitting bare minor units with Money.allocate (ISO 4217 XXX: no currency)."""


@dataclass(frozen=True, slots=True)
class InvoiceToCredit:
    """What a credit note needs to know of its invoice."""

    number: str
    status: str
    total_minor: int
    amount_due_minor: int
    lines: tuple[tuple[str, int], ...]
    """(description, amount_minor) of each line, in position order."""
    credited_minor: int = 0
    """What earlier credit notes credited in all."""
    credited_by_line: Mapping[int, int] | None = None
    """What earlier credit notes credited on each line (by index)."""
    refundable_minor: int = 0
    """What the provider collected for the invoice and has not refunded."""
    taxes: tuple[tuple[int, int, int], ...] = ()
    """INV-7: (line index, tax amount, taxable base) of each exclusive tax line."""

    @property
    def left_minor(self) -> int:
        """What is left to credit on the invoice as a whole."""
        return max(0, self.total_minor - self.credited_minor)

    def line_left_minor(self, index: int) -> int:
        credited = (self.credited_by_line or {}).get(index, 0)
        return max(0, self.lines[index][1] - credited)


@dataclass(frozen=True, slots=True)
class CreditRequest:
    """An amount of the whole invoice, or amounts of lines; `refund`: to the card."""

    amount_minor: int | None = None
    lines: tuple[tuple[int, int], ...] | None = None
    """(invoice line index, amount_minor) pairs."""
    refund: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CreditLine:
    invoice_line: int | None
    description: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CreditNoteDraft:
    lines: tuple[CreditLine, ...]
    refund_minor: int
    credited_minor: int
    applied_minor: int

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


def draft_credit_note(invoice: InvoiceToCredit, request: CreditRequest) -> CreditNoteDraft:
    """The credit note `request` asks for on `invoice`, or the refusal (nothing is
    written by the caller then). Refusal codes: `invoice_not_creditable`,
    `credit_note_exceeds_line`, `credit_note_exceeds_invoice`, `refund_not_possible`;
    a malformed request is InvalidInput."""
    if invoice.status not in CREDITABLE:
        raise Refused(
            f"Invoice {invoice.number} is {invoice.status}; only an open or paid invoice can "
            "be credited.",
            code="invoice_not_creditable",
        )
    lines = _with_tax_back(invoice, _lines(invoice, request))
    total = sum(line.amount_minor for line in lines)
    if total > invoice.left_minor:
        raise Refused(
            f"The credit note's total {total} is more than is left to credit on invoice "
            f"{invoice.number}: {invoice.left_minor} (minor units) of its total "
            f"{invoice.total_minor}.",
            code="credit_note_exceeds_invoice",
        )
    if invoice.status == "open":
        if request.refund:
            raise Refused(
                f"Invoice {invoice.number} is open: nothing was collected, so nothing can "
                "be refunded; a credit note without refund lowers its amount due.",
                code="refund_not_possible",
            )
        applied = min(total, invoice.amount_due_minor)
        return CreditNoteDraft(lines, 0, total - applied, applied)
    refund = min(total, invoice.refundable_minor) if request.refund else 0
    return CreditNoteDraft(lines, refund, total - refund, 0)


def _lines(invoice: InvoiceToCredit, request: CreditRequest) -> tuple[CreditLine, ...]:
    if (request.amount_minor is None) == (request.lines is None):
        raise InvalidInput("give either amount or lines (not both)", code="invalid_input")
    if request.amount_minor is not None:
        amount = _positive(request.amount_minor, "amount")
        reason = (request.reason or "").strip()
        description = reason or f"Credit on invoice {invoice.number}"
        return (CreditLine(None, description[:DESCRIPTION_LENGTH], amount),)
    assert request.lines is not None
    if not request.lines:
        raise InvalidInput("lines: give at least one line")
    seen: set[int] = set()
    found = []
    for position, (index, raw) in enumerate(request.lines):
        here = f"lines[{position}]"
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInput(f"{here}.line: expected a line index, got {index!r}")
        if not 0 <= index < len(invoice.lines):
            raise InvalidInput(
                f"{here}.line: invoice {invoice.number} has lines 0 to "
                f"{len(invoice.lines) - 1}, not {index}",
                code="unknown_invoice_line",
            )
        if index in seen:
            raise InvalidInput(f"{here}.line: line {index} is given twice")
        seen.add(index)
        amount = _positive(raw, f"{here}.amount")
        left = invoice.line_left_minor(index)
        if amount > left:
            raise Refused(
                f"{here}: {amount} is more than is left to credit on line {index} of invoice "
                f"{invoice.number}: {left} (minor units).",
                code="credit_note_exceeds_line",
            )
        description = f"Credit: {invoice.lines[index][0]}"
        found.append(CreditLine(index, description[:DESCRIPTION_LENGTH], amount))
    return tuple(found)


def _with_tax_back(
    invoice: InvoiceToCredit, lines: tuple[CreditLine, ...]
) -> tuple[CreditLine, ...]:
    """INV-7: a credit note carries tax back in proportion (exclusive rates; an inclusive
    price's tax is inside the line credited).

    An amount of the whole invoice is gross: it is split with `Money.allocate`-like
    `Money.allocate` over (the invoice's total less its taxes, each tax), so the parts
    add up to the amount; each tax part is a line on that tax line. Credits of lines are
    net: each tax gets (credited net) × tax / taxable base, rounded once, at most what is
    left of that tax line; credits of the tax lines themselves take nothing more."""
    taxes = [t for t in invoice.taxes if t[1] > 0 and t[2] > 0]
    if not taxes:
        return lines
    tax_indexes = {index for index, _, _ in invoice.taxes}
    if len(lines) == 1 and lines[0].invoice_line is None:
        amount = lines[0].amount_minor
        weights = [max(0, invoice.total_minor - sum(t[1] for t in taxes)), *(t[1] for t in taxes)]
        parts = _largest_remainders(amount, weights)
        found = [CreditLine(None, lines[0].description, parts[0])]
        found.extend(
            CreditLine(index, f"Tax back: {invoice.lines[index][0]}"[:DESCRIPTION_LENGTH], part)
            for (index, _, _), part in zip(taxes, parts[1:], strict=True)
            if part
        )
        return tuple(found)
    net = sum(line.amount_minor for line in lines if line.invoice_line not in tax_indexes)
    extra = []
    for index, tax, taxable in taxes:
        if any(line.invoice_line == index for line in lines):
            continue
        share = min(
            invoice.line_left_minor(index), (2 * net * tax + taxable) // (2 * taxable)
        )  # net x tax / taxable, half up (all positive)
        if share > 0:
            description = f"Tax back: {invoice.lines[index][0]}"[:DESCRIPTION_LENGTH]
            extra.append(CreditLine(index, description, share))
    return (*lines, *extra)


def _largest_remainders(amount: int, weights: list[int]) -> list[int]:
    """`amount` split over `weights` in proportion by `Money.allocate` (the parts add up
    exactly); all of it to the first part when the weights are all 0."""
    if sum(weights) <= 0:
        return [amount, *([0] * (len(weights) - 1))]
    return [part.minor for part in Money(amount, _NO_CURRENCY).allocate(weights)]


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what}: expected a whole number of minor units, got {value!r}")
    if not 0 < value <= MAX_MINOR:
        raise InvalidInput(f"{what}: expected 1 to {MAX_MINOR} (minor units), got {value}")
    return value


def granted_balance(balance_minor: int, amount_minor: object) -> int:
    """The account credit after a goodwill grant of `amount_minor` (positive, minor
    units); InvalidInput for a bad amount, Refused when the balance would not fit."""
    amount = _positive(amount_minor, "amount")
    if balance_minor + amount > MAX_MINOR:
        raise Refused(
            f"The account credit would be {balance_minor + amount}, more than the largest "
            f"balance kept ({MAX_MINOR} minor units).",
            code="account_credit_too_large",
        )
    return balance_minor + amount
