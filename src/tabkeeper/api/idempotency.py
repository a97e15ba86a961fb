"""`Idempotency-Key` on every POST: the same key and body within 24 hours returns the
first response and does nothing twice; the same key with another body is a 409.

Keys belong to the caller (the hash of its Authorization header), so two platforms'
keys never meet. A placeholder row is written before the request runs, so a second
request with the key while the first still runs gets a 409 instead of running twice.
Server errors (5xx) are not kept: the request may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables_access import IdempotentRequest

KEPT_FOR = timedelta(hours=24)
HEADER = b"idempotency-key"
IN_PROGRESS = 0


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, api: Callable[[], Any]) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if not key or len(key) > 255:
            await _problem(
                send, 400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters."
            )
            return
        caller = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()
        target = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        request_hash = hashlib.sha256(target + b"\n" + body).hexdigest()
        api = self.api()
        verdict = await anyio.to_thread.run_sync(
            _claim, api, caller, key.decode("latin-1"), request_hash
        )
        if isinstance(verdict, Replay):
            await _send_json(send, verdict.status, verdict.body, replayed=True)
            return
        if isinstance(verdict, Conflict):
            await _problem(send, 409, verdict.code, verdict.detail)
            return
        captured: list[Message] = []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            captured.append(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await anyio.to_thread.run_sync(_forget, api, caller, key.decode("latin-1"))
            raise
        start = next(m for m in captured if m["type"] == "http.response.start")
        payload = b"".join(
            m.get("body", b"") for m in captured if m["type"] == "http.response.body"
        )
        status = int(start["status"])
        if status >= 500 or status == 401:
            await anyio.to_thread.run_sync(_forget, api, caller, key.decode("latin-1"))
        else:
            await anyio.to_thread.run_sync(
                _keep, api, caller, key.decode("latin-1"), status, payload
            )
        for message in captured:
            await send(message)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class Conflict:
    code: str
    detail: str


IN_USE = Conflict("request_in_progress", "A request with this Idempotency-Key is still running.")


def _claim(api: Any, caller: str, key: str, request_hash: str) -> Replay | Conflict | None:
    """None: run the request (a placeholder is written); else replay or refuse."""
    now = api.clock.now()
    with transaction(api.engine) as session:
        found = session.scalars(
            select(IdempotentRequest).where(
                IdempotentRequest.caller == caller, IdempotentRequest.key == key
            )
        ).first()
        if found is not None and found.created_at <= now - KEPT_FOR:
            session.delete(found)
            session.flush()
            found = None
        if found is not None:
            if found.request_hash != request_hash:
                return Conflict(
                    "idempotency_key_reused", "This Idempotency-Key was used with another request."
                )
            if found.status_code == IN_PROGRESS:
                return IN_USE
            return Replay(found.status_code, found.body)
    try:
        with transaction(api.engine) as session:
            session.add(
                IdempotentRequest(
                    caller=caller,
                    key=key,
                    request_hash=request_hash,
                    status_code=IN_PROGRESS,
                    body={},
                    created_at=now,
                )
            )
    except IntegrityError:
        return IN_USE
    return None


def _keep(api: Any, caller: str, key: str, status: int, payload: bytes) -> None:
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        body = None
    with transaction(api.engine) as session:
        row = session.scalars(
            select(IdempotentRequest).where(
                IdempotentRequest.caller == caller, IdempotentRequest.key == key
            )
        ).first()
        if row is not None:
            row.status_code, row.body = status, {"json": body}


def _forget(api: Any, caller: str, key: str) -> None:
    with transaction(api.engine) as session:
        session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.caller == caller, IdempotentRequest.key == key
            )
        )


async def _send_json(send: Send, status: int, stored: Any, *, replayed: bool) -> None:
    body = json.dumps(stored.get("json") if isinstance(stored, dict) else stored).encode()
    media = b"application/problem+json" if status >= 400 else b"application/json"
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, status: int, code: str, detail: str) -> None:
    body = {"type": "about:blank", "title": "Conflict" if status == 409 else "Bad Request",
            "status": status, "code": code, "detail": detail}  # fmt: skip
    await _send_json(send, status, {"json": body}, replayed=False)
