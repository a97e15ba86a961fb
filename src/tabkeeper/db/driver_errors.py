"""A driver's error as SQLAlchemy's, for statements sent straight to the driver
(db/prepared.py, db/loop_reads.py): OPS-1's retry looks for `connection_invalidated`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError


@contextmanager
def driver_errors(
    dialect: Dialect,
    sql: str,
    arguments: Any,
    driver: Any,
    invalidate: Callable[[BaseException], None],
) -> Iterator[None]:
    """A driver error raised as SQLAlchemy's DBAPIError; a lost connection (`driver`,
    the driver's connection, None when it could not be opened) invalidated first and
    flagged (`connection_invalidated`), as OPS-1's retry expects."""
    failure = dialect.loaded_dbapi.Error
    try:
        yield
    except failure as error:
        lost = driver is not None and dialect.is_disconnect(error, driver, None)
        if lost:
            invalidate(error)
        raise DBAPIError.instance(
            sql, arguments, error, failure, connection_invalidated=lost, dialect=dialect
        ) from error
