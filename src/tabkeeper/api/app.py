"""The FastAPI application: OpenAPI 3.1 at /openapi.json, docs at /docs, API under /v1."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Engine, text

import tabkeeper
from tabkeeper.api.problems import install_problem_handlers
from tabkeeper.db.engine import make_engine
from tabkeeper.settings import Settings


class Health(BaseModel):
    status: str
    database: str
    version: str


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(
        title="tabkeeper",
        version=tabkeeper.__version__,
        summary="Billing for platforms that sell AI agents.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    install_problem_handlers(app)

    @app.get("/health", tags=["operations"])
    def health() -> Health:
        """The server answers and its database takes a query."""
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return Health(status="ok", database=engine.dialect.name, version=tabkeeper.__version__)

    return app
