"""OPS-1: what `tabkeeper serve` hands uvicorn: one process runs the app (with the billing
clock beside it unless `--no-clock` or TABKEEPER_SEPARATE_WORKER=true); `--workers N`
runs N API processes through uvicorn's manager, which import the factory and read the
clock switch, the request log and the metrics directory from the environment."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tabkeeper import cli
from tabkeeper.api.served import (
    FULL_COLLECTION_EVERY,
    SERVE_CLOCK,
    ClockBeside,
    settle_the_heap,
)

KEYS = (SERVE_CLOCK, "TABKEEPER_SERVE_INTERVAL", "TABKEEPER_REQUEST_LOG",
        "PROMETHEUS_MULTIPROC_DIR", "TABKEEPER_SEPARATE_WORKER")  # fmt: skip


@pytest.fixture
def runs(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What uvicorn.run was called with (it is not run); the environment serve changes
    is put back after the test."""
    monkeypatch.setenv("TABKEEPER_DATABASE_URL", database_url)
    for key in KEYS:
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **options: calls.append((app, options)))
    return calls


def _serve(*arguments: str) -> None:
    result = CliRunner().invoke(cli.app, ["serve", *arguments])
    assert result.exit_code == 0, result.output


def test_ops1_one_process_runs_the_clock_unless_told_not_to(
    runs: list[tuple[Any, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPS-1: the billing clock beside the API by default; not with --no-clock, nor when
    `tabkeeper worker` processes do the work (TABKEEPER_SEPARATE_WORKER=true)."""
    _serve()
    _serve("--no-clock")
    monkeypatch.setenv("TABKEEPER_SEPARATE_WORKER", "true")
    _serve()
    assert [isinstance(app, ClockBeside) for app, _options in runs] == [True, False, False]
    assert all(options["timeout_graceful_shutdown"] == 30 for _app, options in runs)
    assert all(options["access_log"] is False for _app, options in runs)


def test_ops1_several_processes_through_uvicorns_manager(
    runs: list[tuple[Any, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPS-1, OPS-2, OPS-3: `--workers 3` hands uvicorn the factory's import string and 3
    processes; the clock switch, the interval and the request log travel in the
    environment; the metrics directory is made (or emptied of an earlier run's files)."""
    _serve("--workers", "3", "--no-clock", "--access-log", "--interval", "7")
    (app, options), = runs  # fmt: skip
    assert app == "tabkeeper.api.served:app"
    assert options["factory"] is True and options["workers"] == 3
    assert os.environ[SERVE_CLOCK] == "0"
    assert os.environ["TABKEEPER_SERVE_INTERVAL"] == "7.0"
    assert os.environ["TABKEEPER_REQUEST_LOG"] == "true"
    assert Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).is_dir()

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    _serve("--workers", "2")
    assert os.environ[SERVE_CLOCK] == "1"
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(given)
    assert not list(given.glob("*.db"))


def test_lim1_the_server_freezes_its_startup_heap_and_makes_full_collections_rarer() -> None:
    """LIM-1 under ingestion (bench/mixed.py): a served process keeps what it holds once
    started out of the garbage collector's walks (`gc.freeze`) and makes a full
    collection come after 100 collections of the middle generation, not 10; objects
    made after it are still collected (a cycle made now is freed by a full collection)."""
    threshold = gc.get_threshold()
    try:
        settle_the_heap()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (threshold[0], threshold[1], FULL_COLLECTION_EVERY)
        cycle: list[object] = []
        cycle.append(cycle)
        watched = weakref.ref(_Node(cycle))
        del cycle
        gc.collect()
        assert watched() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _Node:
    def __init__(self, cycle: list[object]) -> None:
        self.cycle = cycle
        cycle.append(self)
