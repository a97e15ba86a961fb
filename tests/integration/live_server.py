"""A real `tabkeeper serve` process on 127.0.0.1 over a prepared database, for the tests
where the process itself is the point (a SIGKILL, many clients over real HTTP).

`prepare(url)` makes a platform (no trial) with a catalog that counts `call.ended` events,
an organization `acme` subscribed to it with the sandbox's good card, its agent `bot`, and
an API key. `LiveServer(url)` starts `tabkeeper serve` on a free port (the billing clock
beside it, as in production), waits for /health, and is stopped with `stop()` or killed
with `kill()` (SIGKILL, then reaped).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.access import create_api_key
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.context import CatalogStore, billing, unit_of_work
from tabkeeper.services.organizations import (
    create_agent,
    create_organization,
    organization_by_code,
)

CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "calls": {"kind": "count", "event": "call.ended"},
    },
    "plans": {
        "pro": {"name": "Pro", "price": "10.00",
                "includes": {"sessions": 1_000_000, "calls": 10_000_000},
                "limits": {"agents": 5, "seats": 5}},
    },
}  # fmt: skip
TABKEEPER = Path(sys.executable).parent / "tabkeeper"


@dataclass(frozen=True)
class Prepared:
    key: str
    organization: str = "acme"
    agent: str = "bot"


def prepare(url: str) -> Prepared:
    """The platform, catalog, subscribed organization and API key on a migrated database."""
    engine = make_engine(url)
    clock, store = SystemClock(), CatalogStore()
    try:
        with transaction(engine) as session:
            platform = ensure_platform(session, "live", "Live", clock.now(), {"trial": None})
            import_catalog(session, platform, CATALOG, clock.now())
            platform_id = platform.id
            _, key = create_api_key(session, platform_id, "tests", clock.now())
        with billing(engine, platform_id, clock.now(), store) as b:
            create_organization(b, "acme", {"owner": "owner"})
        provider = SandboxProvider(engine, clock)
        work = unit_of_work(engine, platform_id, clock, store)
        subscribe_with_card(work, provider, "acme", "pro", "card_ok")
        with billing(engine, platform_id, clock.now(), store) as b:
            create_agent(b, organization_by_code(b, "acme"), "bot")
    finally:
        engine.dispose()
    return Prepared(key)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LiveServer:
    """`tabkeeper serve` on a free port of 127.0.0.1 over the database at `url`; its
    output goes to `log`."""

    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {**os.environ, "TABKEEPER_DATABASE_URL": url}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(TABKEEPER), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One request on a connection of its own: the status and the JSON answer."""
        connection = self.connection()
        try:
            return send(connection, method, path, body, headers)
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing of the server runs after it. Reaped, so its PID
        names no process any more."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def send(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=data, headers=all_headers)
    response = connection.getresponse()
    raw = response.read()
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = raw.decode("utf-8", "replace")
    return response.status, answer
