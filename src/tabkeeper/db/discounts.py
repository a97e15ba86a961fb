"""The SQL of billing details and coupon redemptions (INV-6, INV-7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables_discounts import BillingDetailsRow, CouponRedemption


def billing_details_of(session: Session, organization_id: int) -> BillingDetailsRow | None:
    return session.get(BillingDetailsRow, organization_id)


def save_billing_details(
    session: Session, organization_id: int, values: dict[str, str | None], now: datetime
) -> BillingDetailsRow:
    """Write the organization's billing details (made on the first save)."""
    row = session.get(BillingDetailsRow, organization_id)
    if row is None:
        row = BillingDetailsRow(organization_id=organization_id)
        session.add(row)
    row.legal_name = str(values["legal_name"])
    row.address = str(values["address"] or "")
    row.country = str(values["country"])
    row.tax_id = values["tax_id"]
    row.updated_at = now
    session.flush()
    return row


def active_redemption(session: Session, organization_id: int) -> CouponRedemption | None:
    """The organization's running redemption, if any."""
    return session.scalars(
        select(CouponRedemption)
        .where(
            CouponRedemption.organization_id == organization_id,
            CouponRedemption.status == "active",
        )
        .order_by(CouponRedemption.id.desc())
    ).first()


def count_redemptions(session: Session, platform_id: int, coupon_code: str) -> int:
    """How many times the platform's coupon was redeemed, all told."""
    found = session.scalar(
        select(func.count()).where(
            CouponRedemption.platform_id == platform_id,
            CouponRedemption.coupon_code == coupon_code,
        )
    )
    return int(found or 0)


def insert_redemption(session: Session, row: CouponRedemption) -> CouponRedemption:
    session.add(row)
    session.flush()
    return row


def delete_redemption(session: Session, row: CouponRedemption) -> None:
    session.delete(row)
    session.flush()
