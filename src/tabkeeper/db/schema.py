"""The whole schema: every module that defines tables, imported once, so that migrations,
`create_all` and schema checks see all of them (the sandbox provider's own included)."""

from __future__ import annotations

from sqlalchemy import MetaData

import tabkeeper.db.tables_access  # API keys, idempotent requests
import tabkeeper.db.tables_channels  # connected channels (CAT-7)
import tabkeeper.db.tables_corrections  # credit notes, refunds (INV-5)
import tabkeeper.db.tables_credits  # credit balances, grants, ledger entries
import tabkeeper.db.tables_discounts  # billing details, coupon redemptions (INV-6, INV-7)
import tabkeeper.db.tables_notify  # webhook endpoints, deliveries
import tabkeeper.db.tables_sandbox  # the sandbox payment provider's records
import tabkeeper.db.tables_stripe  # provider events (PAY-3), Stripe customers (PAY-4)
import tabkeeper.db.tables_usage  # noqa: F401 - usage counters, billing periods, conversations
from tabkeeper.db.tables import Base

METADATA: MetaData = Base.metadata
