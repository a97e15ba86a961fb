"""Errors as application/problem+json (RFC 9457): a stable `code`, a human `detail`, and
never a stack trace (DESIGN.md rule 8). An error with a `problem_fields` mapping adds
those members to the problem (e.g. `reason` of a failed payment)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from tabkeeper.domain.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Refused,
    TabkeeperError,
    Unauthorized,
)

PROBLEM = "application/problem+json"
INTERNAL_ERROR = "Something went wrong on our side; it was logged."


class Problem(BaseModel):
    """An error (RFC 9457): `code` is stable for programs, `detail` is for people."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None
    reason: str | None = None
    request_id: str | None = None
    """The request's id, as in the answer's X-Request-Id header (OPS-3; api/observe.py)."""


def _described(text: str) -> dict[str, Any]:
    return {"model": Problem, "description": text, "content": {PROBLEM: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("Bad input: nothing was changed."),
    401: _described("No valid API key or portal session."),
    403: _described("The caller's role may not do this (ACL-1)."),
    404: _described("No such object for this caller (ACL-3)."),
    409: _described("Refused by the rules, or an Idempotency-Key conflict; nothing changed."),
    422: _described("The request does not match its schema."),
}
"""Declared on every /v1 operation, so the OpenAPI document lists every answer."""
log = logging.getLogger("tabkeeper.api")

_STATUS: tuple[tuple[type[TabkeeperError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (InvalidInput, 400),
    (IllegalTransition, 409),
    (Refused, 409),
)


def problem(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": _title(status), "status": status, "code": code}
    body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:  # pragma: no cover - only standard statuses are used
        return "Error"


def _unreachable(error: DBAPIError) -> bool:
    """PostgreSQL cannot be reached or is shutting down (OPS-5): a failed connect (no
    SQLSTATE), a connection exception (08), operator intervention (57: shutdown, cannot
    connect now) or insufficient resources (53). SQLite's errors carry no SQLSTATE."""
    if not isinstance(error, OperationalError) or not hasattr(error.orig, "sqlstate"):
        return False
    state = getattr(error.orig, "sqlstate", None)
    return state is None or str(state)[:2] in ("08", "57", "53")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(TabkeeperError)
    async def _tabkeeper_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, TabkeeperError)
        status = next((s for kind, s in _STATUS if isinstance(error, kind)), 400)
        extra: dict[str, object] = dict(getattr(error, "problem_fields", None) or {})
        return problem(status, error.code, error.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "invalid_request", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = "not_found" if error.status_code == 404 else f"http_{error.status_code}"
        return problem(error.status_code, code, str(error.detail))

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DBAPIError)
        if not (error.connection_invalidated or _unreachable(error)):
            log.exception("unexpected database error", exc_info=error)
            return problem(500, "internal_error", INTERNAL_ERROR)
        log.warning("the database connection was lost: %s", error.orig)
        answer = problem(503, "database_unavailable",
                         "The database cannot be reached; retry the request.")  # fmt: skip
        answer.headers["Retry-After"] = "1"
        return answer

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "internal_error", INTERNAL_ERROR)
