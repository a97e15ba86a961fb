"""Every request's id, latency and log line (OPS-2, OPS-3), in one ASGI wrapper around the
whole application (outside even the framework's handler of unexpected errors, so a 500
carries its id too).

- The request id is the request's `X-Request-Id` when it sent a usable one (1 to 128
  letters, digits and `-_.:`), else 16 random hex digits. Every answer carries it in
  `X-Request-Id`, and a problem+json answer also in its body (`request_id`).
- The time to answer goes to the route's latency histogram (api/metrics.py), by route
  template (`/v1/organizations/{code}`), method and status.
- With the request log on (`tabkeeper serve --access-log`), one JSON line per request
  (logger `tabkeeper.request`): request_id, method, route, path (secret query parameters
  redacted: api/access_log.py), status, duration_ms. No header is logged, so neither an
  API key nor a portal cookie can reach the log.

A problem answer's body is held until it is whole (it is small) to add the id; any other
answer streams through untouched but for the one header.
"""

from __future__ import annotations

import json
import logging
import os
import re
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabkeeper.api import metrics
from tabkeeper.api.access_log import redact

REQUEST_ID = "X-Request-Id"
_REQUEST_ID = b"x-request-id"
_USABLE = re.compile(rb"[A-Za-z0-9_.:\-]{1,128}")
_PROBLEM = b"application/problem+json"
log = logging.getLogger("tabkeeper.request")


def request_id_of(scope: Scope) -> str | None:
    """The id Observe gave the request (None outside it)."""
    found = scope.get("state", {}).get("request_id")
    return found if isinstance(found, str) else None


def _given_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == _REQUEST_ID:
            if _USABLE.fullmatch(value):
                return bytes(value)
            break
    return os.urandom(8).hex().encode()


class Observe:
    """See the module docstring. `log_requests`: write the request log."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = _given_id(scope)
        text_id = request_id.decode()
        scope.setdefault("state", {})["request_id"] = text_id
        status = 500
        held: Message | None = None
        chunks: list[bytes] = []

        async def answer(message: Message) -> None:
            nonlocal status, held
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (_REQUEST_ID, request_id)]
                message = {**message, "headers": headers}
                if status >= 400 and any(
                    n == b"content-type" and v.startswith(_PROBLEM) for n, v in headers
                ):
                    held = message
                    return
            elif kind == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                start, body = _with_id(held, b"".join(chunks), text_id)
                held = None
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            elapsed = perf_counter() - started
            route = _template(scope)
            metrics.observe_request(scope["method"], route, status, elapsed)
            if self.log_requests:
                target = scope["path"]
                if scope.get("query_string"):
                    target = redact(f"{target}?{scope['query_string'].decode('latin-1')}")
                log.info(
                    "%s %s %d",
                    scope["method"],
                    target,
                    status,
                    extra={
                        "request_id": text_id,
                        "method": scope["method"],
                        "route": route,
                        "path": target,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )


def _template(scope: Scope) -> str:
    """The template of the route that took the request: FastAPI keeps a route included
    with a prefix (`/v1`) in its own part of the scope, with the whole template; other
    routes are Starlette's (`scope["route"]`)."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else "unmatched"


def _with_id(start: Message, body: bytes, request_id: str) -> tuple[Message, bytes]:
    """A problem answer with `request_id` in its body (and its length set again)."""
    try:
        document = json.loads(body)
    except ValueError:
        return start, body
    if not isinstance(document, dict):
        return start, body
    document["request_id"] = request_id
    body = json.dumps(document).encode()
    headers = [(n, v) for n, v in start["headers"] if n != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**start, "headers": headers}, body
