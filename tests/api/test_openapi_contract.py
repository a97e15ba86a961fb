"""INT-2: stable operation ids on every route, tags per resource, and docs/openapi.json
kept equal to the code's document (a change to the API is a visible diff)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fastapi import FastAPI

from tabkeeper.api.app import create_app
from tabkeeper.api.openapi import OPERATION_ID, REGENERATE, api_routes, document_text
from tabkeeper.settings import Settings

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def _app() -> FastAPI:
    return create_app(Settings(database_url="sqlite://"))


def test_int2_every_route_has_an_explicit_resource_verb_operation_id() -> None:
    """Each schema route names its operation itself (not FastAPI's default), in the shape
    resource.verb, and no two operations share an id."""
    routes = [route for route in api_routes(_app()) if route.include_in_schema]
    assert len(routes) > 50
    missing = [route.path for route in routes if route.operation_id is None]
    assert missing == [], f"routes without an explicit operation_id: {missing}"
    bad = [
        route.operation_id for route in routes if not OPERATION_ID.match(route.operation_id or "")
    ]
    assert bad == [], f"operation ids not in the resource.verb shape: {bad}"
    counts = Counter(route.operation_id for route in routes)
    assert [name for name, n in counts.items() if n > 1] == []


def test_int2_operations_are_tagged_by_their_resource() -> None:
    """Each operation's one tag is its resource, in the document the server serves."""
    from fastapi.testclient import TestClient

    app = _app()
    document = app.openapi()
    assert TestClient(app).get("/openapi.json").json() == document
    ids = []
    for operations in document["paths"].values():
        for operation in operations.values():
            ids.append(operation["operationId"])
            assert operation["tags"] == [operation["operationId"].split(".")[0]]
    assert {"invoices.list", "invoices.get", "sessions.start", "events.ingest", "check"} <= set(ids)
    assert "credits.consume" in ids


def test_int2_billing_tab_stays_out_of_the_schema() -> None:
    paths = _app().openapi()["paths"]
    assert not [path for path in paths if path.startswith("/portal")]


def test_int2_checked_in_openapi_document_matches_the_code() -> None:
    """docs/openapi.json is exactly what the code serves; regenerate it when this fails."""
    expected = document_text()
    actual = CHECKED_IN.read_text(encoding="utf-8") if CHECKED_IN.exists() else ""
    assert actual == expected, (
        f"docs/openapi.json differs from the API's document; regenerate it with: {REGENERATE}"
    )


def test_int3_one_version_from_pyproject_in_the_cli_health_and_document() -> None:
    """`tabkeeper --version`, /health and the OpenAPI document all say pyproject.toml's
    version (read at run time from the installed package's metadata)."""
    import tomllib

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from tabkeeper.cli import app as cli

    pyproject = CHECKED_IN.parents[1] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"tabkeeper {version}\n"
    app = _app()
    with TestClient(app) as client:
        assert client.get("/health").json()["version"] == version
    assert app.openapi()["info"]["version"] == version
