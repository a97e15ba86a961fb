"""Golden scenarios: every `tests/scenarios/*.yaml` runs through `tabkeeper simulate` and
must give exactly its `*.expected.json`. Each file's comments say what it proves and the
numbers a person worked out by hand.

A file whose catalog the rules refuse at import (CAT-8: an add-on offered with a plan of an
interval it has no price for) is not run: its golden is the refusal, one line in
`*.expected-error.txt` instead of `*.expected.json`.

After a deliberate change of behaviour, rewrite the expected files with
`TABKEEPER_UPDATE_GOLDEN=1 .venv/bin/pytest tests/scenarios`, and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.simulation.run import render, simulate

HERE = Path(__file__).parent
SCENARIOS = sorted(HERE.glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_scenario(path: Path) -> None:
    expected_path = path.with_suffix(".expected.json")
    try:
        output = render(simulate(yaml.safe_load(path.read_text(encoding="utf-8"))))
    except InvalidConfig as refused:  # a catalog refused at import: its golden is the refusal
        expected_path = path.with_suffix(".expected-error.txt")
        output = f"{refused.message}\n"
    if os.environ.get("TABKEEPER_UPDATE_GOLDEN") == "1" or not expected_path.exists():
        expected_path.write_text(output, encoding="utf-8")
    assert output == expected_path.read_text(encoding="utf-8")


def test_output_is_byte_stable() -> None:
    """The same file gives the same bytes on every run (SCENARIOS.md)."""
    data = yaml.safe_load(SCENARIOS[0].read_text(encoding="utf-8"))
    assert render(simulate(data)) == render(simulate(data))
