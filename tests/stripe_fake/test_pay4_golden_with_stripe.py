"""PAY-4: every golden scenario (tests/scenarios/*.yaml) run once with the Stripe provider,
on localstripe, gives exactly the invoices and answers it gives with the sandbox (its
`*.expected.json`): the provider changes where money moves, never what is billed.

The scenarios name the sandbox's cards (`card_ok`, `card_declined`, `card_fails_later`);
here each becomes a PaymentMethod made in the fake from the Stripe test card of the same
behaviour (4242..., ...0002, ...0341), as Stripe.js would make it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from tabkeeper.clock import SimulatedClock
from tabkeeper.payments.provider import CardOnFile, ChargeResult
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.simulation.run import render, simulate
from tests.stripe_fake.test_pay4_localstripe import (
    DECLINED,
    FAILS_LATER,
    SECRET_KEY,
    VISA,
    Fake,
)

SCENARIOS = Path(__file__).parent.parent / "scenarios"
GOLDEN = sorted(p for p in SCENARIOS.glob("*.yaml") if p.with_suffix(".expected.json").exists())
NUMBERS = {"card_ok": VISA, "card_declined": DECLINED, "card_fails_later": FAILS_LATER}


class NamedCards(StripeProvider):
    """The Stripe provider on localstripe, given the sandbox's card names."""

    def __init__(self, engine: Engine, clock: SimulatedClock, base: str) -> None:
        super().__init__(
            engine, clock, secret_key=SECRET_KEY, publishable_key="pk_test_golden",
            webhook_secret="whsec_golden", api_base=base, max_network_retries=0,
        )  # fmt: skip
        self._fake = Fake(base)

    def _method(self, card: str) -> str:
        """A new PaymentMethod for a card name; anything else (a "pm_...") as it is."""
        return self._fake.card(NUMBERS[card]) if card in NUMBERS else card

    def attach(self, customer: str, card: str) -> CardOnFile:
        return super().attach(customer, self._method(card))

    def complete_checkout(self, checkout_id: str, card: str) -> tuple[CardOnFile, ChargeResult]:
        return super().complete_checkout(checkout_id, self._method(card))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_pay4_golden_scenario_with_stripe_gives_the_sandboxs_invoices(
    path: Path, localstripe: str
) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = simulate(data, lambda engine, clock: NamedCards(engine, clock, localstripe))
    assert render(result) == path.with_suffix(".expected.json").read_text(encoding="utf-8")
