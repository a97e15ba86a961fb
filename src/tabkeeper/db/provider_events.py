"""The SQL of provider events (PAY-3) and of what they change on payment attempts and
saved payment methods (PAY-2, PAY-4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tabkeeper.db.records import insert_once
from tabkeeper.db.tables import Invoice, Organization, PaymentAttempt, PaymentMethod
from tabkeeper.db.tables_stripe import ProviderEvent


def record_event(
    session: Session,
    provider: str,
    event_id: str,
    kind: str,
    object_id: str | None,
    created_at: datetime,
    received_at: datetime,
) -> bool:
    """Store the event once; False when it was stored before (a replay: do nothing).
    Two deliveries at once: the second waits on the UNIQUE key, then finds it stored."""
    return insert_once(
        session,
        ProviderEvent,
        {
            "provider": provider,
            "event_id": event_id,
            "type": kind,
            "object_id": object_id,
            "outcome": "processing",
            "created_at": created_at,
            "received_at": received_at,
        },
    )


def set_event_outcome(session: Session, provider: str, event_id: str, outcome: str) -> None:
    session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.provider == provider, ProviderEvent.event_id == event_id)
        .values(outcome=outcome[:200])
    )


def provider_events(session: Session, provider: str) -> list[ProviderEvent]:
    """Every stored event of `provider`, oldest first."""
    return list(
        session.scalars(
            select(ProviderEvent)
            .where(ProviderEvent.provider == provider)
            .order_by(ProviderEvent.id)
        )
    )


def attempt_by_key(session: Session, idempotency_key: str) -> PaymentAttempt | None:
    """The payment attempt of `idempotency_key`, locked for the transaction."""
    return session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.idempotency_key == idempotency_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def attempt_by_reference(session: Session, reference: str) -> PaymentAttempt | None:
    """The payment attempt the provider knows as `reference` (the newest), locked."""
    return session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.provider_reference == reference)
        .order_by(PaymentAttempt.id.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def settle_failed_attempt(session: Session, attempt_id: int, reference: str) -> bool:
    """A failed attempt whose payment went through after all (the member confirmed it,
    3-D Secure) marked succeeded; False when it is not failed (a replay)."""
    done = session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id, PaymentAttempt.status == "failed")
        .values(
            status="succeeded",
            provider_reference=reference,
            failure_code=None,
            failure_message=None,
        )
        .returning(PaymentAttempt.id)
    ).first()
    return done is not None


def organization_of_invoice(session: Session, invoice_id: int) -> Organization:
    """The organization billed by the invoice `invoice_id`."""
    return session.scalars(
        select(Organization).join(Invoice, Invoice.organization_id == Organization.id)
        .where(Invoice.id == invoice_id)
    ).one()  # fmt: skip


def methods_with_token(session: Session, provider: str, token: str) -> list[PaymentMethod]:
    """The saved payment methods the provider knows as `token` (one per organization)."""
    return list(
        session.scalars(
            select(PaymentMethod).where(
                PaymentMethod.provider == provider, PaymentMethod.token == token
            )
        )
    )


def update_card(
    session: Session, provider: str, token: str, brand: str, last4: str, month: int, year: int
) -> int:
    """New brand, last 4 and expiry of the saved method `token`; how many rows changed."""
    result = session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.provider == provider, PaymentMethod.token == token)
        .values(brand=brand, last4=last4, exp_month=month, exp_year=year)
        .returning(PaymentMethod.id)
    )
    return len(result.all())


def forget_default(session: Session, provider: str, token: str) -> int:
    """The method `token` (detached at the provider) is no longer anyone's default."""
    result = session.execute(
        update(PaymentMethod)
        .where(
            PaymentMethod.provider == provider,
            PaymentMethod.token == token,
            PaymentMethod.is_default,
        )
        .values(is_default=False)
        .returning(PaymentMethod.id)
    )
    return len(result.all())


def flag_disputed(session: Session, invoice_id: int, now: datetime) -> None:
    """The invoice's payment is disputed (PAY-3); the first report's time is kept."""
    session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id, Invoice.disputed_at.is_(None))
        .values(disputed_at=now)
    )
