"""The FastAPI application: OpenAPI 3.1 at /openapi.json, docs at /docs, API under /v1.

`create_app(settings)` builds everything from the settings; tests and the simulator pass
their own engine, clock and payment provider.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel
from sqlalchemy import Engine, text
from starlette.routing import BaseRoute

import tabkeeper
from tabkeeper.api.context import Api
from tabkeeper.api.guard import NulGuard
from tabkeeper.api.health import install_health
from tabkeeper.api.idempotency import IdempotencyMiddleware
from tabkeeper.api.limits import Draining, RequestLimits
from tabkeeper.api.metrics import scrape
from tabkeeper.api.observe import Observe
from tabkeeper.api.openapi import install as install_openapi
from tabkeeper.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from tabkeeper.api.routes import (
    access,
    addons,
    alerts,
    assignments,
    catalog,
    credit_holds,
    credits,
    demo_requests,
    invoices,
    metering,
    notices,
    organizations,
    payments,
    provider_webhooks,  # PAY-3
    resources,
    subscriptions,
    webhooks,
)
from tabkeeper.api.routes import channels as channel_routes  # CAT-7
from tabkeeper.api.routes import corrections as corrections_routes  # INV-5
from tabkeeper.api.routes import discounts as discount_routes  # INV-6, INV-7
from tabkeeper.api.routes import spend as spend_routes  # LIM-6, CRD-6
from tabkeeper.clock import Clock, SystemClock
from tabkeeper.db.engine import make_engine
from tabkeeper.payments import checkout_page, stripe_page
from tabkeeper.payments.choice import payment_provider
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.portal import routes as portal
from tabkeeper.portal.web import PortalHeaders
from tabkeeper.services.context import CATALOGS, CatalogStore
from tabkeeper.settings import Settings

ROUTERS = (
    metering.router,  # first: the hot path (events, the check, session starts) is matched first
    catalog.router,
    organizations.router,
    access.router,
    resources.router,
    subscriptions.router,
    demo_requests.router,
    payments.router,
    invoices.router,
    notices.router,
    webhooks.router,
    addons.router,
    credits.router,
    alerts.router,
    corrections_routes.router,
    assignments.router,  # CAT-9
    channel_routes.router,  # CAT-7
    credit_holds.router,  # CRD-5, CRD-7
    provider_webhooks.router,  # PAY-3
    discount_routes.router,  # INV-6, INV-7
    spend_routes.router,  # LIM-6, CRD-6
)


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class Health(BaseModel):
    status: str
    database: str
    version: str


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    clock: Clock | None = None,
    provider: PaymentProvider | None = None,
    store: CatalogStore = CATALOGS,
) -> FastAPI:
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    clock = clock or SystemClock()
    provider = provider or payment_provider(settings, engine, clock)  # PAY-4: by settings
    api = Api(settings, engine, clock, provider, store)
    app = FastAPI(
        title="tabkeeper",
        version=tabkeeper.__version__,
        summary="Billing for platforms that sell AI agents.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        telemetry=None if settings.telemetry else _NO_TELEMETRY,
    )
    app.state.api = api
    install_problem_handlers(app)
    app.add_middleware(IdempotencyMiddleware, api=lambda: app.state.api)
    app.add_middleware(PortalHeaders)  # the billing tab's security headers (OPS-4)
    app.add_middleware(NulGuard)  # outermost: before anything reads the request
    # OPS-4, OPS-5: body cap, JSON depth, rate limits, draining; outside even the NulGuard
    app.state.draining = draining = Draining()
    app.add_middleware(RequestLimits, settings=settings, draining=draining)
    install_health(app, engine, draining)  # /health/live, /health/ready

    @app.get("/health", operation_id="health.get", tags=["operations"])
    def health() -> Health:
        """The server answers and its database takes a query."""
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return Health(status="ok", database=engine.dialect.name, version=tabkeeper.__version__)

    @app.get(
        "/metrics",
        operation_id="metrics.get",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text."}},
    )
    def metrics() -> Response:
        """The process's (or all API processes') counts and the database's backlog, in
        Prometheus' text format (OPS-2; docs/operations.md, "Metrics")."""
        content, media_type = scrape(engine, api.clock)
        return Response(content, media_type=media_type)

    _observed(app, log_requests=settings.request_log)  # OPS-2, OPS-3

    app.router.routes.extend(_shared_routes())
    install_openapi(app)  # operation ids' resources as tags (INT-2, api/openapi.py)
    return app


@cache
def _shared_routes() -> tuple[BaseRoute, ...]:
    """The API's routes under /v1, the hosted pages' and the billing tab's, included once
    per process and shared by every app made in it. FastAPI builds an included route's
    validators on the first request it routes and keeps them with the inclusion: built
    per app, that cost about 150 ms an app (a test run makes over a thousand apps).
    The routes take what they need from the request's app (`request.app.state.api`),
    so sharing them shares nothing of an app's engine, clock or settings."""
    shared = APIRouter()
    for router in ROUTERS:  # each straight under the app: one level of routing, not two
        shared.include_router(router, prefix="/v1", responses=PROBLEM_RESPONSES)
    shared.include_router(checkout_page.router)
    shared.include_router(stripe_page.router)  # PAY-4: the Stripe provider's hosted pages
    shared.include_router(portal.router)  # the billing tab (PRT-1), with its static files
    return tuple(shared.routes)


def _observed(app: FastAPI, *, log_requests: bool) -> None:
    """Put api/observe.py's Observe around the whole application, outside the
    framework's handler of unexpected errors (the outermost layer a middleware added
    with `add_middleware` can reach is inside it), so that even a 500 carries its id."""
    build = app.build_middleware_stack

    def built() -> Any:
        return Observe(build(), log_requests=log_requests)

    app.build_middleware_stack = built  # type: ignore[method-assign]
