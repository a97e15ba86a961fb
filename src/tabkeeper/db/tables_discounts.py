"""Billing details and coupon redemptions (SPEC INV-6, INV-7).

`billing_details`: one row per organization that gave its legal name, address, country
and tax ID (checked by domain/billing_details.py before they are written); they decide its
taxes and are printed on its invoices.

`coupon_redemptions`: a coupon redeemed by a (billing) organization: the catalog version
it was redeemed from (the coupon's terms stay those), how many periods it has covered and
the one it covers now. At most one is `active` per organization; a finished one (every
period covered and over) or a replaced one stays for the record and counts against the
coupon's `max_redemptions`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tabkeeper.db.tables import Base


class BillingDetailsRow(Base):
    __tablename__ = "billing_details"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    legal_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    country: Mapped[str] = mapped_column(String(2))
    tax_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class CouponRedemption(Base):
    __tablename__ = "coupon_redemptions"
    __table_args__ = (Index("ix_coupon_redemptions_platform_coupon", "platform_id", "coupon_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    coupon_code: Mapped[str] = mapped_column(String(64))
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"))
    status: Mapped[str] = mapped_column(String(20))
    """active | finished | replaced"""
    redeemed_at: Mapped[datetime]
    redeemed_by: Mapped[str | None] = mapped_column(String(64))
    """The member who redeemed it in the billing tab; None for the platform (API)."""
    periods_used: Mapped[int] = mapped_column(default=0)
    covered_start: Mapped[datetime | None]
    covered_end: Mapped[datetime | None]
