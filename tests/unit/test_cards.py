"""The pure parts of the payment providers: test cards, input checks, errors (PAY-1, PAY-2)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidInput, Refused, TabkeeperError, UnknownCurrency
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments import CardDeclined, CheckoutStatus, ProviderError, UnknownCard
from tabkeeper.payments.provider import require_charge_amount, require_text
from tabkeeper.payments.sandbox import (
    TEST_CARDS,
    SandboxCard,
    SandboxCardKind,
    checkout_url,
    sandbox_card,
)

USD = Currency.of("USD")
TEST_NUMBERS = [card.number for card in TEST_CARDS]


@pytest.mark.parametrize(
    ("given_card", "kind", "brand", "last4"),
    [
        ("card_ok", SandboxCardKind.CARD_OK, "visa", "4242"),
        ("card_declined", SandboxCardKind.CARD_DECLINED, "visa", "0002"),
        ("card_fails_later", SandboxCardKind.CARD_FAILS_LATER, "visa", "0341"),
        (" Card_OK ", SandboxCardKind.CARD_OK, "visa", "4242"),
        ("4242424242424242", SandboxCardKind.CARD_OK, "visa", "4242"),
        ("4242 4242 4242 4242", SandboxCardKind.CARD_OK, "visa", "4242"),
        ("4242-4242-4242-4242", SandboxCardKind.CARD_OK, "visa", "4242"),
        ("4000 0000 0000 0002", SandboxCardKind.CARD_DECLINED, "visa", "0002"),
        ("4000-0000-0000-0341", SandboxCardKind.CARD_FAILS_LATER, "visa", "0341"),
        ("5555 5555 5555 4444", SandboxCardKind.CARD_OK, "mastercard", "4444"),
        ("  5555555555554444\n", SandboxCardKind.CARD_OK, "mastercard", "4444"),
    ],
)
def test_pay1_test_cards_by_name_and_number(
    given_card: str, kind: SandboxCardKind, brand: str, last4: str
) -> None:
    """PAY-1: the sandbox knows its test cards by name (SCENARIOS.md) and by number."""
    card = sandbox_card(given_card)
    assert (card.kind, card.brand, card.last4) == (kind, brand, last4)


@pytest.mark.parametrize(
    ("given_card", "described"),
    [
        ("4111 1111 1111 1111", "ending in 1111"),  # a Visa number that is no test card
        ("4242 4242 4242 4241", "ending in 4241"),
        ("4242.4242.4242.4242", "ending in 4242"),
        ("", "empty card"),
        ("   ", "empty card"),
        ("none", "'none'"),  # SCENARIOS.md's "no payment method" is not a card
        ("card_maybe", "'card_maybe'"),
        (None, "no card (None)"),
        (4242424242424242, "a value of type int"),
    ],
)
def test_unknown_cards_are_refused_with_the_list(given_card: object, described: str) -> None:
    """PAY-1, PAY-2. Bad inputs tried: a non-test Visa number, a test number one digit off,
    other separators, empty, blank, "none", an unknown name, None, an int. The message
    lists the test cards and never repeats a card number beyond its last 4 digits."""
    with pytest.raises(UnknownCard) as raised:
        sandbox_card(given_card)
    error = raised.value
    assert error.code == "unknown_card"
    assert isinstance(error, InvalidInput)
    assert described in error.message
    assert "card_ok (4242 4242 4242 4242, visa)" in error.message
    assert "card_fails_later (4000 0000 0000 0341, visa)" in error.message
    what_was_given = error.message.split(";")[0]
    assert sum(c.isdigit() for c in what_was_given) <= 4


def test_errors_have_codes_and_messages() -> None:
    declined = CardDeclined()
    assert isinstance(declined, Refused)
    assert (declined.code, declined.message) == ("card_declined", "Your card was declined.")
    assert issubclass(UnknownCard, InvalidInput)
    assert ProviderError("down").code == "provider_error"
    assert isinstance(ProviderError("down"), TabkeeperError)
    assert not issubclass(ProviderError, InvalidInput | Refused)


def test_checkout_statuses_and_url() -> None:
    assert [s.value for s in CheckoutStatus] == ["open", "completed", "declined", "expired"]
    assert CheckoutStatus.OPEN == "open"
    assert checkout_url("cs_sbx_ab12") == "/sandbox/checkout/cs_sbx_ab12"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "non-empty"),
        ("  ", "non-empty"),
        (None, "non-empty"),
        (12, "non-empty"),
        ("x" * 11, "at most 10"),
    ],
)
def test_require_text_refuses(value: object, problem: str) -> None:
    """Bad inputs tried: empty, blank, None, a number, too long."""
    with pytest.raises(InvalidInput, match=problem) as raised:
        require_text(value, "customer", 10)
    assert raised.value.message.startswith("customer: ")


def test_require_text_keeps_good_text() -> None:
    assert require_text("acme", "customer", 10) == "acme"


@pytest.mark.parametrize(
    ("amount", "error", "problem"),
    [
        (Money(0, USD), InvalidInput, "must be positive"),
        (Money(-100, USD), InvalidInput, "must be positive"),
        (Money(100, Currency("USD", 3)), InvalidInput, "USD has exponent 2, not 3"),
        (Money(100, Currency("ZZZ", 2)), UnknownCurrency, "unknown currency"),
        (Money(100, "USD"), InvalidInput, "expected a Currency"),  # type: ignore[arg-type]
        (100, InvalidInput, "expected Money"),
        ("1.00", InvalidInput, "expected Money"),
        (None, InvalidInput, "expected Money"),
    ],
)
def test_charge_amounts_are_checked(
    amount: object, error: type[InvalidInput], problem: str
) -> None:
    """Bad inputs tried: zero, negative, a currency with the wrong exponent (mismatched),
    an unknown currency, a bare code, not Money at all."""
    with pytest.raises(error, match=problem):
        require_charge_amount(amount)


def test_a_positive_amount_is_chargeable() -> None:
    assert require_charge_amount(Money(1, USD)) == Money(1, USD)
    assert require_charge_amount(Money(500, Currency.of("JPY"))).minor == 500


@given(
    st.sampled_from(TEST_CARDS),
    st.lists(st.sampled_from(["", " ", "-", "  ", "--", " - "]), min_size=16, max_size=16),
)
def test_separators_never_change_the_card(card: SandboxCard, separators: list[str]) -> None:
    """Property: a test card number with spaces or dashes anywhere is the same test card."""
    typed = "".join(sep + digit for sep, digit in zip(separators, card.number, strict=True))
    assert sandbox_card(typed) == card


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_other_numbers_are_unknown_and_never_echoed(number: str) -> None:
    """Property: a number that is no test card is refused, and the error shows only its
    last 4 digits (PAY-2: no whole card number in messages or logs)."""
    assume(number not in TEST_NUMBERS)
    with pytest.raises(UnknownCard) as raised:
        sandbox_card(number)
    assert number not in raised.value.message
    assert f"ending in {number[-4:]}" in raised.value.message
