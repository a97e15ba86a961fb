"""Health for load balancers and process managers (OPS-5): `/health/live` (the process
answers; it never touches the database) and `/health/ready` (the database answers and its
migrations are current, and the process is not draining after SIGTERM). `/health` stays
as it was (the database takes a query). Each answers 503 problem+json with Retry-After
when not ready, never a 500 and never a hang: the database check runs in a worker thread
with the engine's own connect timeout."""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabkeeper.api.limits import Draining
from tabkeeper.api.problems import problem
from tabkeeper.db.migrate import migrations_current

log = logging.getLogger("tabkeeper.api")


class Live(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    migrations: str


def _not_ready(code: str, detail: str) -> JSONResponse:
    answer = problem(503, code, detail)
    answer.headers["Retry-After"] = "1"
    return answer


def install_health(app: FastAPI, engine: Engine, draining: Draining) -> None:
    responses: dict[int | str, dict[str, object]] = {
        503: {"description": "Not ready: draining, database unreachable or not migrated."}
    }

    @app.get("/health/live", operation_id="health.live", tags=["operations"])
    async def health_live() -> Live:
        """The process is up and its event loop answers (no database work)."""
        return Live(status="ok")

    @app.get(
        "/health/ready",
        operation_id="health.ready",
        tags=["operations"],
        responses=responses,
        response_model=Ready,
    )
    async def health_ready() -> JSONResponse | Ready:
        """Ready for traffic: not draining, the database answers, migrations are current."""
        if draining:
            return _not_ready("draining", "The process is shutting down.")
        try:
            current = await anyio.to_thread.run_sync(migrations_current, engine)
        except SQLAlchemyError as error:
            log.warning("not ready: the database does not answer: %s", error)
            return _not_ready("database_unavailable", "The database does not answer.")
        if not current:
            detail = "The database is not at the newest migration: run `tabkeeper migrate`."
            return _not_ready("migrations_pending", detail)
        return Ready(status="ok", database=engine.dialect.name, migrations="current")
