"""The restore drill of docs/operations.md ("Backups"; OPS-1) on PostgreSQL:
scripts/restore_drill.py dumps a database with invoices (first and renewal, paid) and
usage counters, restores the dump into a new database, migrates it, and finds the
invoices, their lines and the counters identical. PostgreSQL only (skipped on SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import Invoice
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import FEB_1, make_world

pytestmark = pytest.mark.skipif(
    not os.environ.get("TABKEEPER_TEST_DATABASE_URL"),
    reason="PostgreSQL only (scripts/with-postgres): make test's -m db run",
)
DRILL = Path(__file__).parents[2] / "scripts" / "restore_drill.py"


def test_ops1_restore_drill_gives_identical_invoices_and_counters(
    engine: Engine, database_url: str
) -> None:
    """OPS-1: pg_dump -> pg_restore into a new database -> tabkeeper migrate -> the
    invoices and counters are identical (and the drill says so)."""
    world = make_world(engine)
    for code in ("acme", "globex"):
        world.organization(code)
        world.subscribe(code, "basic", "card_ok")
        events = [
            {"id": f"{code}-{i}", "type": "call.ended", "org": code, "agent": "a1",
             "properties": {"duration_seconds": 61 + i}}
            for i in range(50)
        ]  # fmt: skip
        with world.billing() as b:
            assert ingest_batch(b, events).accepted == 50
    world.clock.set(FEB_1 + timedelta(hours=1))
    world.worker().tick()  # renewals: the usage invoiced, paid by card
    assert world.invoices(Invoice.status == "paid") == 4

    drill = subprocess.run(
        [sys.executable, str(DRILL), database_url], capture_output=True, text=True, check=False
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert "invoices: 4 rows, restored 4: identical" in drill.stdout
    assert "usage_counters:" in drill.stdout and "DIFFERENT" not in drill.stdout
    assert drill.stdout.rstrip().endswith("restore drill: identical")
