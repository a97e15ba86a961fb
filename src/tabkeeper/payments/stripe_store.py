"""The Stripe provider's queries on its own table `stripe_customers` (PAY-4;
db/tables_stripe.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.tables_stripe import CUSTOMER_LENGTH, STRIPE_ID_LENGTH, StripeCustomer

__all__ = ["CUSTOMER_LENGTH", "STRIPE_ID_LENGTH", "add_stripe_customer", "stripe_customer_id"]


def stripe_customer_id(session: Session, customer: str) -> str | None:
    """The Stripe customer id ("cus_...") of the tabkeeper customer `customer`, or None."""
    return session.scalars(
        select(StripeCustomer.stripe_id).where(StripeCustomer.customer == customer)
    ).one_or_none()


def add_stripe_customer(session: Session, customer: str, stripe_id: str, now: datetime) -> None:
    """Keep `stripe_id` as the customer's (IntegrityError when one is kept already)."""
    session.add(StripeCustomer(customer=customer, stripe_id=stripe_id, created_at=now))
    session.flush()


def customer_of_stripe(session: Session, stripe_id: str) -> str | None:
    """The tabkeeper customer of the Stripe customer `stripe_id`, or None."""
    return session.scalars(
        select(StripeCustomer.customer).where(StripeCustomer.stripe_id == stripe_id)
    ).one_or_none()
