"""The server answers /health and serves its OpenAPI document; errors are problem+json."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tabkeeper.api.app import create_app
from tabkeeper.settings import Settings


def test_health_and_openapi(engine: Engine, database_url: str) -> None:
    client = TestClient(create_app(Settings(database_url=database_url), engine))
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == engine.dialect.name
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/health" in document["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_paths_answer_problem_json(engine: Engine, database_url: str) -> None:
    client = TestClient(create_app(Settings(database_url=database_url), engine))
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
