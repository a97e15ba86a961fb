"""The bare database doing the hot path's work, through the same driver with the same
settings (a raw connection of an engine made by tabkeeper's `make_engine`): no ORM, no
services, statements written once. It computes nothing, so it is the floor.

- `insert_batch`: one multi-row INSERT of a batch's event rows, then one UPDATE per
  counter the batch touches (`quantity = quantity + ?` by the counter's key), COMMIT;
- `read_counter`: the SELECT of one counter row by its key (autocommit, no transaction);
- `start`: `UPDATE usage_counters SET quantity = quantity + 1 unit WHERE <key> AND
  quantity + 1 unit <= cap RETURNING quantity`, and when a row came back one INSERT of the
  start event, COMMIT.
On SQLite every writing transaction starts with BEGIN IMMEDIATE, as tabkeeper's do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import hotpath_calls as tk
from sqlalchemy import Engine

EVENT_COLUMNS = (
    "organization_id, client_id, type, agent, conversation, time, properties, received_at"
)
KEY = "organization_id = {m} AND meter = {m} AND period_start = {m} AND scope = {m}"

CounterKey = tuple[int, str, datetime, str]
"""(organization id, meter, period start, scope)."""


class Bare:
    def __init__(self, url: str) -> None:
        self.engine: Engine = tk.make_engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.raw = self.engine.raw_connection()
        self.mark = "?" if self.sqlite else "%s"
        self.key = KEY.format(m=self.mark)
        self.cursor = self.raw.cursor()
        self._inserts: dict[int, str] = {}

    def close(self) -> None:
        self.cursor.close()
        self.raw.close()
        self.engine.dispose()

    def time(self, moment: datetime) -> Any:
        """As tabkeeper's column type writes it (SQLite: the UTC wall time, as text)."""
        if self.sqlite:
            return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def _begin(self) -> None:
        if self.sqlite:
            self.cursor.execute("BEGIN IMMEDIATE")

    def _insert(self, n: int) -> str:
        found = self._inserts.get(n)
        if found is None:
            row = "(" + ", ".join([self.mark] * 8) + ")"
            found = self._inserts[n] = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES " + ", ".join(
                [row] * n
            )
        return found

    def event_row(
        self, organization_id: int, event: dict[str, Any], received: datetime
    ) -> tuple[Any, ...]:
        """An event of the API's shape as the events table's row."""
        return (
            organization_id, event["id"], event["type"], event.get("agent"),
            event.get("conversation"), self.time(event["time_at"]),
            json.dumps(event.get("properties", {})), self.time(received),
        )  # fmt: skip

    def insert_batch(
        self, rows: Sequence[tuple[Any, ...]], counters: dict[CounterKey, tuple[int, int]]
    ) -> None:
        self._begin()
        self.cursor.execute(self._insert(len(rows)), [v for row in rows for v in row])
        update = (
            f"UPDATE usage_counters SET quantity = quantity + {self.mark}, "
            f"answered = answered + {self.mark} WHERE {self.key}"
        )
        for (organization_id, meter, start, scope), (quantity, answered) in counters.items():
            self.cursor.execute(
                update, (quantity, answered, organization_id, meter, self.time(start), scope)
            )
        self.raw.commit()

    def create_counters(self, keys: list[CounterKey]) -> None:
        self._begin()
        for organization_id, meter, start, scope in keys:
            self.cursor.execute(
                "INSERT INTO usage_counters (organization_id, meter, period_start, scope, "
                f"quantity, answered) VALUES ({self.mark}, {self.mark}, {self.mark}, "
                f"{self.mark}, 0, 0)",
                (organization_id, meter, self.time(start), scope),
            )
        self.raw.commit()

    def read_counter(self, key: CounterKey) -> tuple[int, int]:
        organization_id, meter, start, scope = key
        self.cursor.execute(
            f"SELECT quantity, answered FROM usage_counters WHERE {self.key}",
            (organization_id, meter, self.time(start), scope),
        )
        row = self.cursor.fetchone()
        if not self.sqlite:
            self.raw.commit()  # end the read's implicit transaction, as autocommit would
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def start(self, key: CounterKey, cap: int, event: tuple[Any, ...]) -> bool:
        organization_id, meter, start, scope = key
        self._begin()
        self.cursor.execute(
            f"UPDATE usage_counters SET quantity = quantity + {tk.SCALE} WHERE {self.key} "
            f"AND quantity + {tk.SCALE} <= {self.mark} RETURNING quantity",
            (organization_id, meter, self.time(start), scope, cap),
        )
        admitted = self.cursor.fetchone() is not None
        if admitted:
            self.cursor.execute(self._insert(1), event)
        self.raw.commit()
        return admitted

    def count(self, sql: str, *params: Any) -> int:
        self.cursor.execute(sql.replace("?", self.mark), params)
        row = self.cursor.fetchone()
        self.raw.commit()
        return int(row[0] or 0) if row else 0
