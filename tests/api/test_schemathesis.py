"""The whole OpenAPI document, fuzzed by schemathesis through the ASGI app: no request,
however odd, gets a 5xx, and every response matches what the document declares (status
code, content type, body). One test per operation, on SQLite and PostgreSQL; bounded to
a few examples each so that the whole run takes about a minute."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from tabkeeper.api.app import create_app
from tabkeeper.settings import Settings
from tests.api.conftest import make_api_world

DOCUMENT = create_app(Settings(database_url="sqlite://")).openapi()
OPERATIONS = sorted(
    (path, method.upper())
    for path, methods in DOCUMENT["paths"].items()
    for method in methods
    if path.startswith("/v1/")
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_the_api_holds_to_its_openapi_document(engine: Engine, path: str, method: str) -> None:
    api = make_api_world(engine)
    api.platform.post(
        "/v1/organizations",
        {"code": "acme", "members": [{"code": "alice", "role": "owner", "email": "a@acme.test"}]},
    )
    api.world.subscribe("acme")
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.platform.http.app)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {api.platform.token}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
        database=None,
    )  # fmt: skip
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
