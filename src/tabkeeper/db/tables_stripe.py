"""Provider events (PAY-3) and the Stripe provider's own records (PAY-4).

`provider_events`: each callback (webhook) a payment provider sent, once: the provider's
event id is UNIQUE per provider, and the row is written in the same transaction as the
event's effect, so an event delivered again (or by two deliveries at once) finds its row
and changes nothing twice, and a crash before the effect leaves no row: the redelivery
does it all.

`stripe_customers`: the Stripe customer ("cus_...") of each tabkeeper customer
("org_<id>", services/payments.customer_of), created lazily on the first payment
method; UNIQUE both ways, so two racing first cards keep one customer.

Both are part of the one schema (db/schema.py) and its migrations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base

EVENT_ID_LENGTH = 255
EVENT_TYPE_LENGTH = 100
CUSTOMER_LENGTH = 200
STRIPE_ID_LENGTH = 255


class ProviderEvent(Base):
    """A provider's callback, stored once (PAY-3)."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH))
    """The provider's id of the event ("evt_...")."""
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_LENGTH))
    object_id: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH))
    """The id of the object the event is about ("pi_...", "pm_..."), for the operator."""
    outcome: Mapped[str] = mapped_column(String(200))
    """What processing it did, in a few words ("invoice paid", "ignored: unknown type")."""
    created_at: Mapped[datetime]
    """When the provider says the event happened."""
    received_at: Mapped[datetime]


class StripeCustomer(Base):
    """The Stripe customer of a tabkeeper customer (PAY-4)."""

    __tablename__ = "stripe_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(CUSTOMER_LENGTH), unique=True)
    stripe_id: Mapped[str] = mapped_column(String(STRIPE_ID_LENGTH), unique=True)
    created_at: Mapped[datetime]
