"""A live `tabkeeper serve` on 127.0.0.1 for the clients' tests (clients/python,
clients/typescript; issue 14, INT-1..3), over the test's own database (SQLite, or
PostgreSQL under `make test-postgres`), with a webhook receiver beside it.

The server is tests/integration/live_server.py's LiveServer; what it is given here is a
platform with a catalog (a priced plan with included AI credits, a `call.ended` counter
and billable sessions) and an API key, made through the services as `tabkeeper keys
create` would. Everything else (the organization, its subscription through the sandbox's
hosted checkout, the webhook endpoint) the tests make through the clients themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.services.access import create_api_key
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tests.integration.live_server import LiveServer

CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "calls": {"kind": "count", "event": "call.ended"},
    },
    "plans": {
        "pro": {"name": "Pro", "price": "10.00",
                "includes": {"sessions": 1_000_000, "calls": 10_000_000},
                "limits": {"agents": 5, "seats": 5},
                "features": ["smart_reply"],
                "credits": {"amount": 100, "expires": "period_end"}},
    },
    "ai_features": {"smart_reply": {"credits": 3}},
    "credit_price": "0.01",
}  # fmt: skip


@dataclass
class Received:
    """The webhooks the receiver got: (headers, raw body), in order."""

    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 60) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)


@dataclass(frozen=True)
class Live:
    base_url: str
    key: str
    webhook_url: str
    received: Received
    server: LiveServer


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """An HTTP server on 127.0.0.1 that keeps every POST and answers 204."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with received.arrived:
                received.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                received.arrived.notify_all()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[str, Received],
) -> Iterator[Live]:
    """`tabkeeper serve` over a platform with CATALOG and an API key; webhooks may go to
    127.0.0.1 (TABKEEPER_WEBHOOK_ALLOWED_HOSTS), rate limits off (tests/conftest.py)."""
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            now = SystemClock().now()
            platform = ensure_platform(session, "clients", "Clients", now, {"trial": None})
            import_catalog(session, platform, CATALOG, now)
            _, key = create_api_key(session, platform.id, "clients", now)
    finally:
        engine.dispose()
    monkeypatch.setenv("TABKEEPER_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    server = LiveServer(database_url, tmp_path / "server.log")
    url, received = receiver
    try:
        yield Live(f"http://127.0.0.1:{server.port}", key, url, received, server)
    finally:
        server.stop()
