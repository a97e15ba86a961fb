"""The tabkeeper command: catalog import (CAT-6 versions), tick (INV-4), simulate errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner

from tabkeeper.cli import app
from tests.integration.conftest import CATALOG, make_world


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TABKEEPER_DATABASE_URL", database_url)
    return CliRunner()


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_catalog_import_makes_a_version_only_when_something_changed(
    runner: CliRunner, tmp_path: Path
) -> None:
    """CAT-6: a changed price is a new version; the same document is the same version."""
    document = {"settings": {"trial": None}, "catalog": CATALOG}
    path = _write(tmp_path, "catalog.yaml", document)
    first = runner.invoke(app, ["catalog", "import", str(path), "--platform", "acme"])
    assert first.exit_code == 0, first.output
    assert "catalog version 1" in first.output
    again = runner.invoke(app, ["catalog", "import", str(path), "--platform", "acme"])
    assert "catalog version 1" in again.output
    changed = yaml.safe_load(yaml.safe_dump(document))
    changed["catalog"]["plans"]["basic"]["price"] = "35.00"
    path = _write(tmp_path, "catalog2.yaml", changed)
    second = runner.invoke(app, ["catalog", "import", str(path), "--platform", "acme"])
    assert "catalog version 2" in second.output


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"catalog": {"plans": {"basic": {"name": "B", "pricee": "1"}}}},
         "catalog.plans.basic.pricee: unknown field"),
        ({"catalog": CATALOG, "setings": {}}, "setings: unknown section"),
        ({"settings": {"currency": "XYZ"}, "catalog": CATALOG}, "settings.currency"),
        ([1, 2], "expected a mapping with a `catalog` section"),
    ],
)  # fmt: skip
def test_catalog_import_refuses_bad_files(
    runner: CliRunner, tmp_path: Path, document: object, message: str
) -> None:
    """Bad inputs tried: a typo in a plan field, an unknown section, an unknown currency,
    a list instead of a mapping. Exit 2, one line naming the path."""
    result = runner.invoke(app, ["catalog", "import", str(_write(tmp_path, "c.yaml", document))])
    assert result.exit_code == 2
    assert message in result.stderr


def test_tick_runs_due_work_once(runner: CliRunner, engine: Engine) -> None:
    """INV-4: `tabkeeper tick --now T` twice for the same moment does the work once."""
    world = make_world(engine)
    world.organization("acme")
    world.subscribe("acme")
    result = runner.invoke(app, ["tick", "--now", "2026-02-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "did 2 piece(s)" in result.output  # the renewal and its collection
    again = runner.invoke(app, ["tick", "--now", "2026-02-01T00:00:00Z"])
    assert "did 0 piece(s)" in again.output
    assert (world.invoices(), world.charges()) == (2, 2)
    bad = runner.invoke(app, ["tick", "--now", "tomorrow"])
    assert bad.exit_code == 2
    assert "--now" in bad.stderr


def test_simulate_names_the_path_of_a_typo(tmp_path: Path) -> None:
    """SCENARIOS.md: an invalid file exits 2 with the path in the file on stderr and
    nothing on stdout."""
    scenario = {
        "settings": {"trial": None},
        "catalog": CATALOG,
        "organizations": {
            "acme": {"created_at": "2026-01-01T00:00:00Z", "payment_method": "card_ok"}
        },
        "timeline": [
            {"at": "2026-01-01T00:00:00Z", "do": "subscribe", "org": "acme", "plan": "basic"},
            {"at": "2026-01-02T00:00:00Z", "do": "change_plan", "org": "acme", "plan": "gold"},
        ],
        "until": "2026-02-01T00:00:00Z",
    }  # fmt: skip
    result = CliRunner().invoke(app, ["simulate", str(_write(tmp_path, "s.yaml", scenario))])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "timeline[1].plan: unknown plan 'gold'"
    missing = CliRunner().invoke(app, ["simulate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2


def test_keys_create_prints_a_working_key_once(runner: CliRunner, database_url: str) -> None:
    """ACL-3: `tabkeeper keys create` prints a key that authenticates; only its hash is
    stored."""
    from fastapi.testclient import TestClient

    from tabkeeper.api.app import create_app
    from tabkeeper.db.engine import make_engine
    from tabkeeper.settings import Settings

    result = runner.invoke(app, ["keys", "create", "--platform", "acme", "--name", "ci"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("tk_")
    engine = make_engine(database_url)
    try:
        client = TestClient(create_app(Settings(database_url=database_url), engine))
        assert (
            client.get("/v1/organizations", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )
        with engine.connect() as connection:
            from sqlalchemy import text

            hashes = connection.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
        assert key not in hashes
    finally:
        engine.dispose()
