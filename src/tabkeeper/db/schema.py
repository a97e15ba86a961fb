"""The whole schema: every module that defines tables, imported once, so that migrations,
`create_all` and schema checks see all of them (the sandbox provider keeps its own)."""

from __future__ import annotations

from sqlalchemy import MetaData

import tabkeeper.db.tables_access  # API keys, idempotent requests
import tabkeeper.db.tables_credits  # credit balances, grants, ledger entries
import tabkeeper.db.tables_notify  # webhook endpoints, deliveries
import tabkeeper.db.tables_usage  # usage counters, billing periods, conversations
import tabkeeper.payments.sandbox_store  # noqa: F401 - defines the sandbox_* tables
from tabkeeper.db.tables import Base

METADATA: MetaData = Base.metadata
