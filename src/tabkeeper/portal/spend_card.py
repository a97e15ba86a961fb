"""What the billing tab's "AI spend" card shows (LIM-6, CRD-5..7), read through the
services the API uses; its forms are portal/spend.py's."""

from __future__ import annotations

from dataclasses import dataclass

from tabkeeper.db.tables import Organization
from tabkeeper.domain.catalog import Catalog
from tabkeeper.domain.money import Money
from tabkeeper.services import auto_top_ups, credit_holds, spend_caps
from tabkeeper.services.context import Billing


@dataclass(frozen=True, slots=True)
class SpendCard:
    """What the AI spend card shows."""

    balance: int
    held: int
    cap: Money | None
    spent: Money
    percent: int | None
    auto_threshold: int | None
    auto_credits: int | None
    auto_in_flight: bool
    low_threshold: int | None
    can_top_up: bool
    """The catalog has a credit price (auto top-up buys at it)."""

    @property
    def level(self) -> str:
        """The bar's colour: ok below 80%, watch from 80%, over at the cap."""
        if self.percent is None or self.percent < 80:
            return "ok"
        return "watch" if self.percent < 100 else "over"


def spend_card(b: Billing, organization: Organization, catalog: Catalog) -> SpendCard | None:
    """Shown where the catalog sells credits or has AI features (as the credits card)."""
    if catalog.credit_price is None and not catalog.ai_features:
        return None
    cap = spend_caps.spend_of(b, organization)
    auto = auto_top_ups.auto_top_up_of(b, organization)
    held = credit_holds.held_credits(b, organization.id)
    low = credit_holds.low_threshold(b, organization.id)
    currency = b.terms.currency
    return SpendCard(
        balance=auto.balance,
        held=held,
        cap=None if cap.cap is None else Money(cap.cap, currency),
        spent=Money(cap.spent, currency),
        percent=cap.percent,
        auto_threshold=auto.threshold,
        auto_credits=auto.credits,
        auto_in_flight=auto.in_flight,
        low_threshold=low,
        can_top_up=catalog.credit_price is not None,
    )
