"""Inserts that must happen once: INSERT … ON CONFLICT DO NOTHING on the table's unique
key, so a rerun of the same work is a no-op instead of an error (USE-1, INV-4, NOT-1).
One helper, for one row or many (a multi-row statement), on SQLite and PostgreSQL; the
statement is built once per table, columns returned and database kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ValuesBase

from tabkeeper.db.prepared import write_rows


@cache
def insert_ignoring(
    target: Table, dialect: str, returning: tuple[str, ...] = ("id",)
) -> ValuesBase:
    """INSERT … ON CONFLICT DO NOTHING RETURNING `returning` into `target` (the values
    come as parameters: one mapping, or a list of them for a multi-row insert)."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(target).on_conflict_do_nothing()
    if returning:
        return statement.returning(*(target.c[name] for name in returning))
    return statement


def insert_rows_ignoring(
    session: Session,
    target: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: tuple[str, ...] = ("id",),
) -> list[Any]:
    """Insert the rows that are not there yet (by the unique key), in one statement per
    page of rows; the `returning` columns of those inserted now (none for the others:
    RETURNING says for sure whether a row went in; a driver's rowcount does not)."""
    if not rows:
        return []
    statement = insert_ignoring(target, session.get_bind().dialect.name, returning)
    return write_rows(session, statement, rows)
