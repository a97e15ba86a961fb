"""Lists: `{"data": [...], "has_more": bool, "next_cursor": str | null}`, in id order,
`limit` 1–100 (default 20), `cursor` from the previous page."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from tabkeeper.domain.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


LimitQuery = Annotated[int, Query(ge=1, le=100, description="How many items (1-100).")]
CursorQuery = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
]


def decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":")
        if kind != "after":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "cursor: not a cursor from a previous page", code="invalid_cursor"
        ) from None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).rstrip(b"=").decode()


def page(
    session: Session,
    query: Select[Any],
    id_column: Any,
    limit: int,
    cursor: str | None,
    show: Callable[[Any], R],
) -> Page[R]:
    """One page of `query` (rows with an `id`), ordered by id, after the cursor."""
    after = decode_cursor(cursor)
    rows: Sequence[Any] = session.scalars(
        query.where(id_column > after).order_by(id_column).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[R](
        data=[show(row) for row in rows],
        has_more=more,
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )
