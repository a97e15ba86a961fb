"""Request and answer bodies of coupons applied (INV-6) and billing details (INV-7);
shared by api/routes/discounts.py and the billing tab's forms."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tabkeeper.api.schemas import Strict


class DiscountIn(Strict):
    coupon: str = Field(max_length=64, description="The code of a coupon of the catalog.")


class Discount(BaseModel):
    """A coupon redeemed by an organization, and how far it has run."""

    id: int
    organization: str
    coupon: str
    name: str
    percent_off: str | None
    amount_off_minor: int | None
    periods: int | None = Field(description="Periods it covers; null: forever.")
    periods_used: int
    redeemed_at: datetime


class BillingDetailsIn(Strict):
    legal_name: str = Field(max_length=1000)
    country: str = Field(max_length=100, description="ISO 3166-1 alpha-2, e.g. DE.")
    address: str = Field(default="", max_length=2000)
    tax_id: str | None = Field(default=None, max_length=100)


class BillingDetails(BaseModel):
    """An organization's billing details; all null while none were given."""

    organization: str
    legal_name: str | None
    address: str | None
    country: str | None
    tax_id: str | None
