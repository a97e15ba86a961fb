"""The organization's payment method on file (PAY-2): saved with brand and last 4 only,
one default per organization. Split from payments.py so that the modules that start or
restore a subscription can save a card without importing the collection flow.
"""

from __future__ import annotations

from tabkeeper.db import payments as store
from tabkeeper.db.tables import Organization, PaymentMethod
from tabkeeper.payments.provider import CardOnFile
from tabkeeper.services.context import Billing


def save_payment_method(b: Billing, organization: Organization, card: CardOnFile) -> PaymentMethod:
    """Keep `card` as the organization's default method; only brand and last 4 (PAY-2)."""
    store.clear_default_methods(b.session, organization.id)
    method = PaymentMethod(
        organization_id=organization.id,
        provider=card.provider,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=True,
        created_at=b.now,
    )
    b.session.add(method)
    b.session.flush()
    return method


def clear_payment_methods(b: Billing, organization: Organization) -> None:
    store.clear_default_methods(b.session, organization.id)


def default_payment_method(b: Billing, organization_id: int) -> PaymentMethod | None:
    return store.default_method(b.session, organization_id)
