"""Errors as application/problem+json (RFC 9457): a stable `code`, a human `detail`, and
never a stack trace (DESIGN.md rule 8). An error with a `problem_fields` mapping adds
those members to the problem (e.g. `reason` of a failed payment)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "internal_error", "Something went wrong on our side; it was logged.")
