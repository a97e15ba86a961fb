"""Limits at the door (OPS-4): a body cap, a JSON depth check and per-credential rate
limits, in one ASGI middleware outside everything else, so that nothing reads a body
before it is known to be small enough.

- Body: a `Content-Length` over `max_body_bytes` is answered 413 before one byte of the
  body is read; a body sent without a length (chunked) is counted as its pieces arrive and
  answered 413 the moment it passes the cap (what was read is dropped). A body that fits is
  handed on as one message (the NulGuard and the app read it as before).
- JSON depth: a body the app would parse as JSON (a JSON content type, or none) nested
  deeper than `max_json_depth` is answered 400 `json_too_deep` before any parser sees it
  (Python's json module gives up with a RecursionError, a 500, a few thousand levels down).
  Counting costs nothing for the usual body: only one holding more brackets than the
  allowed depth is scanned, strings stripped first by one regular expression.
  `POST /v1/events` is left to its own reader, which reads any depth safely and refuses a
  too-deep event by its index, keeping the rest of the batch (USE-2).
- Rate limits: a token bucket per credential, keyed by the SHA-256 of the bearer token or
  of the portal's session cookie (`tk_...` API keys and `ps_...` portal sessions have their
  own rate and burst). Over the limit: 429 `rate_limited` with `Retry-After` (whole
  seconds until a token is back). Checked before the credential is looked up, so a
  limited caller costs no database work either. In-process: each process keeps its own
  buckets, so with N API processes behind a balancer a credential gets up to N times the
  rate (docs/operations.md).
- Draining: on SIGTERM under `tabkeeper serve` the app is marked draining (chained before
  uvicorn's own handler, at lifespan startup), and /health/ready answers 503 from then on.

Problems are written here as bytes (the app is not reached), in the same problem+json shape
as api/problems.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabkeeper.api.guard import replaying
from tabkeeper.settings import Settings

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_AUTHORIZATION = b"authorization"
_COOKIE = b"cookie"
_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
_TRANSFER_ENCODING = b"transfer-encoding"
PORTAL_COOKIE = b"tk_portal="
"""The portal's session cookie (portal/web.py SESSION_COOKIE), as it appears in a header."""
READS_ANY_DEPTH = frozenset({"/v1/events"})
"""Paths whose route reads JSON of any depth safely itself (api/schemas_metering.py)."""
BUCKETS_KEPT = 10_000
"""The most buckets kept at once per kind; past it the oldest makes room (a full bucket
is what a new one would be, so forgetting one never limits anyone)."""


def json_depth(body: bytes, limit: int) -> int:
    """How deeply `body` nests arrays and objects, or any number over `limit` as soon as it
    is known to be deeper. Brackets inside strings do not count."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return 0  # cannot nest deeper than it has brackets: not over the limit
    depth = deepest = 0
    if b'"' in body:
        body = _STRINGS.sub(b"", body)
    for bracket in _BRACKETS.findall(body):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Token buckets of one kind: `rate` tokens a second, at most `burst`. Used on the
    event loop only (no lock needed: no await between reading and writing a bucket)."""

    def __init__(self, rate: float, burst: int, size: int = BUCKETS_KEPT) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.size = size
        self._buckets: dict[bytes, _Bucket] = {}

    def take(self, key: bytes, now: float) -> float:
        """Take a token for `key`: 0 when there was one, else seconds until there is."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.size:
                del self._buckets[next(iter(self._buckets))]
            self._buckets[key] = _Bucket(self.burst - 1.0, now)
            return 0.0
        tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0.0
        bucket.tokens = tokens
        return (1.0 - tokens) / self.rate


class Draining:
    """Set once the process was asked to stop: /health/ready answers 503 from then on."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def start(self) -> None:
        self._event.set()

    def on_sigterm(self) -> None:
        """Chain a SIGTERM handler before the one installed now (uvicorn's, which stops
        the server): it marks the app draining first. Only from the main thread (a test
        client runs the lifespan elsewhere: nothing to do there)."""
        if threading.current_thread() is not threading.main_thread():
            return
        before = signal.getsignal(signal.SIGTERM)

        def handle(signum: int, frame: FrameType | None) -> None:
            self.start()
            if callable(before):
                before(signum, frame)

        signal.signal(signal.SIGTERM, handle)


class RequestLimits:
    """The body cap, the JSON depth check and the rate limits (see the module docstring).
    Per request: one pass over the headers, and for a credential one SHA-256 and a
    bucket update."""

    def __init__(self, app: ASGIApp, settings: Settings, draining: Draining) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_depth = settings.max_json_depth
        on = settings.rate_limits
        self.keys = TokenBuckets(settings.api_key_rate, settings.api_key_burst) if on else None
        self.sessions = (
            TokenBuckets(settings.portal_session_rate, settings.portal_session_burst)
            if on
            else None
        )
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                receive = self._lifespan(receive)
            await self.app(scope, receive, send)
            return
        length = -1
        json_body = True
        credential: bytes | None = None
        cookie: bytes | None = None
        streamed = False
        for name, value in scope["headers"]:
            if name == _CONTENT_LENGTH:
                length = int(value) if value.isdigit() else -1
            elif name == _CONTENT_TYPE:
                json_body = b"json" in value.lower()
            elif name == _AUTHORIZATION:
                credential = value
            elif name == _COOKIE and PORTAL_COOKIE in value:
                cookie = value
            elif name == _TRANSFER_ENCODING:
                streamed = True
        if length > self.max_body:
            await _too_large(send, self.max_body)
            return
        if self.keys is not None and (credential is not None or cookie is not None):
            wait = self._rate(credential, cookie)
            if wait:
                await _problem(send, 429, "rate_limited", _RATE_DETAIL, retry_after=wait)
                return
        if length == 0 or (length < 0 and not streamed):  # no body: nothing to read here
            await self.app(scope, receive, send)
            return
        first = await receive()
        body = first.get("body", b"")
        if first.get("more_body", False):
            chunks = [body]
            size = len(body)
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await _too_large(send, self.max_body)
                    return
                chunks.append(chunk)
                more = bool(message.get("more_body", False))
            body = b"".join(chunks)
            first = {"type": "http.request", "body": body, "more_body": False}
        elif len(body) > self.max_body:
            await _too_large(send, self.max_body)
            return
        if (
            json_body
            and body
            and json_depth(body, self.max_depth) > self.max_depth
            and scope["path"] not in READS_ANY_DEPTH
        ):
            detail = f"The JSON body nests deeper than {self.max_depth} levels."
            await _problem(send, 400, "json_too_deep", detail)
            return
        await self.app(scope, replaying(first, receive), send)

    def _rate(self, credential: bytes | None, cookie: bytes | None) -> float:
        """Seconds to wait before this credential may call again (0: go ahead)."""
        assert self.keys is not None and self.sessions is not None
        token = b""
        if credential is not None:
            token = credential.partition(b" ")[2].strip()
        elif cookie is not None:
            token = cookie.partition(PORTAL_COOKIE)[2].partition(b";")[0].strip()
        if not token:
            return 0.0
        buckets = self.keys if token.startswith(b"tk_") else self.sessions
        return buckets.take(hashlib.sha256(token).digest(), time.monotonic())

    def _lifespan(self, receive: Receive) -> Receive:
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.draining.on_sigterm()
            return message

        return watched


_RATE_DETAIL = "Too many requests with this credential; retry after the time given."


async def _too_large(send: Send, cap: int) -> None:
    detail = f"The request body is larger than {cap} bytes."
    await _problem(send, 413, "body_too_large", detail)


async def _problem(
    send: Send, status: int, code: str, detail: str, *, retry_after: float = 0.0
) -> None:
    from http import HTTPStatus

    document: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
