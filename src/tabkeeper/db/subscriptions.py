"""The SQL of subscriptions, their add-on slots and their scheduled changes (SUB-1..10,
ADD-1..4, SUB-4).

Lookups return the ORM rows the services change. Statements of fixed shape are built once
per process, the values as parameters; the ORM's bulk writes (whose effect on the rows
loaded in the session the ORM works out from the statement) are built per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, defer

from tabkeeper.db.tables import CatalogVersion, ScheduledChange, Subscription, SubscriptionAddon

_SUBSCRIPTION = select(Subscription).where(Subscription.organization_id == bindparam("org"))
_LOCKED_SUBSCRIPTION = _SUBSCRIPTION.with_for_update()
_LOCKED_WITH_VERSION = (
    select(Subscription, CatalogVersion)
    .join(CatalogVersion, CatalogVersion.id == Subscription.catalog_version_id)
    .where(Subscription.organization_id == bindparam("org"))
    .options(defer(CatalogVersion.document))
    .with_for_update(of=Subscription)
)
_ADDONS = select(SubscriptionAddon).where(
    SubscriptionAddon.subscription_id == bindparam("subscription")
)
_SLOTS = select(SubscriptionAddon.addon_code, SubscriptionAddon.quantity).where(
    SubscriptionAddon.subscription_id == bindparam("subscription")
)


def subscription_of(session: Session, owner_id: int, *, lock: bool) -> Subscription | None:
    """The subscription of the billing organization `owner_id`, locked for the
    transaction when `lock`."""
    statement = _LOCKED_SUBSCRIPTION if lock else _SUBSCRIPTION
    return session.scalars(statement, {"org": owner_id}).first()


def locked_with_version(
    session: Session, owner_id: int
) -> tuple[Subscription, CatalogVersion] | None:
    """The subscription of the billing organization `owner_id`, locked for the
    transaction (its row only), with its catalog version but not the version's document
    (the parsed catalog is kept per process; the document is read only when it is not
    there yet), so that the catalog needs no query of its own."""
    row = session.execute(_LOCKED_WITH_VERSION, {"org": owner_id}).first()
    if row is None:
        return None
    subscription, version = row
    return subscription, version


def addon_rows(session: Session, subscription_id: int) -> list[SubscriptionAddon]:
    """The subscription's add-on slot rows."""
    return list(session.scalars(_ADDONS, {"subscription": subscription_id}))


def addon_slots(session: Session, subscription_id: int) -> list[tuple[str, int]]:
    """The subscription's add-on codes and the slots held of each now."""
    rows = session.execute(_SLOTS, {"subscription": subscription_id}).all()
    return [(code, quantity) for code, quantity in rows]


def delete_addons(session: Session, subscription_id: int) -> None:
    """The subscription holds no add-on slots any more."""
    session.execute(
        delete(SubscriptionAddon).where(SubscriptionAddon.subscription_id == subscription_id)
    )


def upcoming_change(
    session: Session, subscription_id: int, statuses: Sequence[str]
) -> ScheduledChange | None:
    """The subscription's latest scheduled change in one of `statuses`."""
    return session.scalars(
        select(ScheduledChange)
        .where(
            ScheduledChange.subscription_id == subscription_id,
            ScheduledChange.status.in_(statuses),
        )
        .order_by(ScheduledChange.id.desc())
    ).first()


def cancel_changes(
    session: Session, subscription_id: int, statuses: Sequence[str], at: datetime
) -> None:
    """The subscription's scheduled changes in one of `statuses` are canceled at `at`."""
    session.execute(
        update(ScheduledChange)
        .where(
            ScheduledChange.subscription_id == subscription_id,
            ScheduledChange.status.in_(statuses),
        )
        .values(status="canceled", decided_at=at)
    )
