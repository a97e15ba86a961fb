"""The API's OpenAPI document, as served at /openapi.json and checked in as docs/openapi.json.

Every route names its operation with an explicit, stable `operation_id` of the shape
`resource.verb` (`invoices.list`, `sessions.start`, `credits.consume`; the real-time check
is plain `check`): client generators turn these into method names, so they never change
once published (INT-2). Each operation's tag is its resource, the part before the dot, so a
generated client groups methods per resource; `install(app)` makes the served document
tagged that way, and `document_text()` is the checked-in file's exact text.

Regenerate the checked-in file after changing a route: `make openapi` (that is
`.venv/bin/tabkeeper openapi > docs/openapi.json`, or
`.venv/bin/python -m tabkeeper.api.openapi > docs/openapi.json`);
tests/api/test_openapi_contract.py fails while the two differ.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

OPERATION_ID = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)?$")
"""`resource.verb` in lower snake case; a lone verb (`check`) is its own resource."""

REGENERATE = "make openapi  (or: .venv/bin/tabkeeper openapi > docs/openapi.json)"

_METHODS = ("get", "put", "post", "delete", "patch")


def resource_of(operation_id: str) -> str:
    """The tag of an operation: the resource its id names."""
    return operation_id.split(".", 1)[0]


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every APIRoute of the app, through included routers, schema or not."""
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            yield route
            continue
        original = getattr(route, "original_router", None)
        if original is not None:
            stack[0:0] = list(original.routes)


def build(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI builds, each operation tagged with its resource."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    for operations in document.get("paths", {}).values():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is not None and "operationId" in operation:
                operation["tags"] = [resource_of(operation["operationId"])]
    return document


def install(app: FastAPI) -> None:
    """Serve `build(app)` at the app's openapi_url (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_text() -> str:
    """docs/openapi.json's text: the document of a default app, indented, one newline."""
    from tabkeeper.api.app import create_app
    from tabkeeper.settings import Settings

    app = create_app(Settings(database_url="sqlite://"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document_text())
