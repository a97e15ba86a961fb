"""The SQL of who is calling (ACL-1..3): platform API keys, found by their stored hash."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tabkeeper.db.tables_access import ApiKey

_BY_HASH = select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash"))


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    """The API key stored with the SHA-256 `key_hash` (revoked ones included)."""
    return session.scalars(_BY_HASH, {"key_hash": key_hash}).first()
