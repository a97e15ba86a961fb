"""The worked examples of SCENARIOS.md, from ../shared/scenarios, give exactly the
invoices SCENARIOS.md states (INV-1, SUB-5, USE-5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tabkeeper.simulation.run import simulate

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"


def _run(name: str) -> dict[str, Any]:
    path = SHARED / name
    if not path.exists():
        path = Path("/work/shared/scenarios") / name
    return simulate(yaml.safe_load(path.read_text(encoding="utf-8")))


def _invoices(result: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    return [
        (i["issued_at"], i["total_minor"], [line["amount_minor"] for line in i["lines"]])
        for i in result["invoices"]
    ]


def test_voice_overage_bills_20_minutes_in_arrears() -> None:
    """USE-5, INV-1: Jan 1 4900; Feb 1 4900 + 200 (20 minutes over in January) = 5100."""
    result = _run("voice-overage.yaml")
    assert _invoices(result) == [
        ("2026-01-01T00:00:00Z", 4900, [4900]),
        ("2026-02-01T00:00:00Z", 5100, [200, 4900]),
    ]
    usage_line = result["invoices"][1]["lines"][0]
    assert usage_line["kind"] == "usage" and usage_line["quantity"] == "20"
    assert all(i["status"] == "paid" for i in result["invoices"])
    assert result["refusals"] == []


def test_upgrade_day_proration() -> None:
    """SUB-5: Apr 1 3000; Apr 16 −1500 + 3000 = 1500; May 1 6000 on Pro."""
    result = _run("upgrade-day-proration.yaml")
    assert _invoices(result) == [
        ("2026-04-01T00:00:00Z", 3000, [3000]),
        ("2026-04-16T12:00:00Z", 1500, [-1500, 3000]),
        ("2026-05-01T00:00:00Z", 6000, [6000]),
    ]
    assert [i["number"] for i in result["invoices"]] == ["INV-000001", "INV-000002", "INV-000003"]
    assert result["subscriptions"][0]["plan"] == "pro"
