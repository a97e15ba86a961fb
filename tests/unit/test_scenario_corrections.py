"""The corrections steps of a scenario file (INV-5, SCENARIOS.md "More of the format"):
`credit_note` takes `amount` or `lines`, not both; a bad field names its path.

Tried: a credit note with neither amount nor lines, with both, lines not a list or empty,
a line without amount, a negative line index, an unknown key in a line, an amount of 0, a
negative amount, too many decimals, `refund` as text; void/mark_paid/mark_uncollectible
without an invoice; a grant without an amount or of 0."""

from __future__ import annotations

from typing import Any

import pytest

from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.money import Currency, Money
from tabkeeper.simulation.steps import IssueCreditNote
from tests.unit.test_scenario import document, invalid, one_step, step

USD = Currency.of("USD")


def test_inv5_a_credit_note_of_an_amount_without_refund() -> None:
    parsed = one_step(step("credit_note", invoice="INV-000001", amount="10.00"))
    assert isinstance(parsed, IssueCreditNote)
    assert (parsed.amount, parsed.lines, parsed.refund) == (Money(1000, USD), None, False)


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "neither",
        step("credit_note", invoice="INV-000001"),
        "timeline[0].lines: give amount or lines",
    ),
    (
        "both",
        step(
            "credit_note",
            invoice="INV-000001",
            amount="1.00",
            lines=[{"line": 0, "amount": "1.00"}],
        ),
        "timeline[0].lines: give amount or lines, not both",
    ),
    (
        "lines-empty",
        step("credit_note", invoice="INV-000001", lines=[]),
        "timeline[0].lines: expected a list of {line, amount}, got []",
    ),
    (
        "line-without-amount",
        step("credit_note", invoice="INV-000001", lines=[{"line": 0}]),
        "timeline[0].lines[0].amount: is required",
    ),
    (
        "line-negative-index",
        step("credit_note", invoice="INV-000001", lines=[{"line": -1, "amount": "1.00"}]),
        "timeline[0].lines[0].line",
    ),
    (
        "line-unknown-key",
        step("credit_note", invoice="INV-000001", lines=[{"line": 0, "amount": "1", "x": 1}]),
        "timeline[0].lines[0]",
    ),
    (
        "amount-zero",
        step("credit_note", invoice="INV-000001", amount="0"),
        "timeline[0].amount: expected a positive amount, got '0'",
    ),
    (
        "amount-negative",
        step("credit_note", invoice="INV-000001", amount="-1.00"),
        "timeline[0].amount",
    ),
    (
        "amount-decimals",
        step("credit_note", invoice="INV-000001", amount="1.001"),
        "timeline[0].amount",
    ),
    (
        "refund-text",
        step("credit_note", invoice="INV-000001", amount="1.00", refund="yes"),
        "timeline[0].refund: expected true or false, got 'yes'",
    ),
    ("void-no-invoice", step("void_invoice"), "timeline[0].invoice: is required"),
    ("paid-no-invoice", step("mark_paid"), "timeline[0].invoice: is required"),
    ("uncollectible-no-invoice", step("mark_uncollectible"), "timeline[0].invoice: is required"),
    ("grant-no-amount", step("grant_account_credit"), "timeline[0].amount: is required"),
    ("grant-zero", step("grant_account_credit", amount="0.00"), "timeline[0].amount"),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_inv5_bad_correction_steps_name_their_path(raw: dict[str, Any], message: str) -> None:
    error = invalid(document(raw))
    assert isinstance(error, InvalidConfig)
    assert str(error).startswith(message), str(error)
