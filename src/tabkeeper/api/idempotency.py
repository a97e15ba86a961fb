"""`Idempotency-Key` on every POST: the same key and body within 24 hours returns the
first response and does nothing twice; the same key with another body is a 409.

Keys belong to the caller: the hash of who it is (platform, or organization and member)
and of its Authorization header, so two platforms', two organizations' or two keys'
Idempotency-Keys never meet (ACL-3). The credential is checked before anything is
claimed or replayed: a revoked API key or an ended portal session gets the route's own
401, never a stored answer. A request without the header passes straight through: no body
read, no wrapping, no database work.

No secret is kept (ACL-3): the answer of `POST /v1/api_keys` is kept without its `key`,
that of `POST /v1/webhook_endpoints` without its `secret`, and a replay returns the object
with that field null and the header `Idempotent-Secret-Withheld: true` (the secret was
shown once, to the first request). `POST /v1/portal_sessions` is not kept at all: a retry
makes a new session (a token is stored nowhere, and making one changes nothing).

While a keyed request runs, its key holds a marker row ("in progress", with the process
that claimed it and when), so that a second request with the key gets a 409
`request_in_progress` instead of running twice. A crash must not strand the key: a marker
whose request is no longer running is free, and the retry that finds it takes it over
(one conditional UPDATE, so two retries never both run) and does the work. A marker is
taken to be abandoned when
- it is this process's own and this process runs no request with the key;
- it was left by a process of this machine (the same boot and PID namespace) that is gone
  (or by an earlier run of this process's PID);
- or it is older than `RUNNING_AT_MOST` (a process of another machine, or anywhere
  without /proc): no request runs that long.
Server errors (5xx) are not kept: the request may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables_access import IdempotentRequest
from tabkeeper.domain.errors import TabkeeperError
from tabkeeper.services.access import Caller, credential_digest, credential_of

KEPT_FOR = timedelta(hours=24)
RUNNING_AT_MOST = timedelta(minutes=5)
"""A marker older than this is free whoever left it: a request still running after five
minutes is taken to be lost (the longest requests, a batch of 1,000 events or a payment,
take seconds)."""
HEADER = b"idempotency-key"
IN_PROGRESS = 0
SECRETS = {"/v1/api_keys": ("key",), "/v1/webhook_endpoints": ("secret",)}
"""The fields of an answer that are a secret, shown once: never kept (ACL-3)."""
NOT_KEPT = frozenset({"/v1/portal_sessions"})
"""Answers that are kept not at all: they are nothing but a secret."""
WITHHELD = b"idempotent-secret-withheld"


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that runs a keyed request: its PID space (None when unknown), its PID,
    and a random id of this run of it (a PID is reused, the id never)."""

    space: str | None
    pid: int
    run: str


@cache
def _pid_space() -> str | None:
    """This machine's boot and PID namespace: where a PID names one process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


@cache
def _this_process(pid: int) -> Owner:
    return Owner(_pid_space(), pid, uuid.uuid4().hex)


def this_process() -> Owner:
    return _this_process(os.getpid())  # a forked worker is a process of its own


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_running: Counter[tuple[str, str]] = Counter()
"""The (caller, key) of the keyed requests this process runs (counted from before their
marker is written until after their response is kept)."""
_running_lock = threading.Lock()


def _count(slot: tuple[str, str], change: int) -> None:
    with _running_lock:
        _running[slot] += change
        if _running[slot] <= 0:
            del _running[slot]


def _abandoned(marker: IdempotentRequest, slot: tuple[str, str], now: datetime) -> bool:
    """Whether the request of an "in progress" marker is known to run no more."""
    if marker.created_at <= now - RUNNING_AT_MOST:
        return True
    data = marker.body.get("owner") if isinstance(marker.body, dict) else None
    if not isinstance(data, dict):
        return False
    me = this_process()
    if data.get("run") == me.run and data.get("pid") == me.pid:
        with _running_lock:
            return _running[slot] <= 1  # only the request asking
    pid = data.get("pid")
    if me.space is not None and data.get("space") == me.space and isinstance(pid, int):
        # A PID this process has now (a restarted container's PID 1) is a gone run's.
        return pid == me.pid or not _alive(pid)
    return False


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, api: Callable[[], Any]) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = authorization = None
        for name, value in scope["headers"]:
            if name == HEADER:
                key = value
            elif name == b"authorization":
                authorization = value
        if key is None:
            await self.app(scope, receive, send)
            return
        await self._keyed(scope, receive, send, key, authorization or b"")

    async def _keyed(
        self, scope: Scope, receive: Receive, send: Send, key_bytes: bytes, authorization: bytes
    ) -> None:
        body = await _read_body(receive)
        if not key_bytes or len(key_bytes) > 255:
            await _problem(
                send, 400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters."
            )
            return
        api = self.api()
        caller = await _caller(api, authorization)
        if caller is None:  # the route answers 401 itself; nothing is claimed or replayed
            await self.app(scope, _replaying(body), send)
            return
        slot = (caller_slot(caller, authorization), key_bytes.decode("latin-1"))
        target = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        request_hash = hashlib.sha256(target + b"\n" + body).hexdigest()
        _count(slot, 1)
        try:
            verdict = await anyio.to_thread.run_sync(_claim, api, slot, request_hash)
            if isinstance(verdict, Replay):
                await _send_json(send, verdict.status, verdict.body, replayed=True)
                return
            if isinstance(verdict, Conflict):
                await _problem(send, 409, verdict.code, verdict.detail)
                return
            await self._run(scope, body, send, api, slot, verdict)
        finally:
            _count(slot, -1)

    async def _run(
        self, scope: Scope, body: bytes, send: Send, api: Any, slot: tuple[str, str], at: datetime
    ) -> None:
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        try:
            await self.app(scope, _replaying(body), capture)
        except BaseException:
            await anyio.to_thread.run_sync(_forget, api, slot, at)
            raise
        start = next(m for m in captured if m["type"] == "http.response.start")
        payload = b"".join(
            m.get("body", b"") for m in captured if m["type"] == "http.response.body"
        )
        status = int(start["status"])
        path = scope["path"].rstrip("/")
        if status >= 500 or status == 401 or path in NOT_KEPT:
            await anyio.to_thread.run_sync(_forget, api, slot, at)
        else:
            kept = _without_secrets(payload, SECRETS.get(path, ()))
            await anyio.to_thread.run_sync(_keep, api, slot, at, status, kept)
        for message in captured:
            await send(message)


def caller_slot(caller: Caller, authorization: bytes) -> str:
    """Whose Idempotency-Keys these are: who the caller is and with which credential."""
    return hashlib.sha256(caller.identity.encode() + b"\n" + authorization).hexdigest()


def _replaying(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _caller(api: Any, authorization: bytes) -> Caller | None:
    """Who the Authorization header stands for now; None when it is not valid (revoked,
    ended, forged, missing)."""
    try:
        credential = credential_of(authorization.decode("latin-1"))
        now = api.clock.now()
        found: Caller | None = api.callers.get(credential_digest(credential), now)
        if found is None:
            found = await anyio.to_thread.run_sync(
                api.callers.authenticate, api.engine, credential, now
            )
    except TabkeeperError:
        return None
    return found


def _without_secrets(payload: bytes, fields: tuple[str, ...]) -> Any:
    """The JSON of an answer, with the secret `fields` (shown once) taken out: what is
    kept and replayed. A secret left out is marked in the kept body's "withheld"."""
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        return {"json": None}
    withheld = []
    if isinstance(body, dict):
        for name in fields:
            if body.get(name) is not None:
                body[name] = None
                withheld.append(name)
    return {"json": body, "withheld": withheld} if withheld else {"json": body}


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


def _marker(session: Session, slot: tuple[str, str]) -> IdempotentRequest | None:
    caller, key = slot
    return session.scalars(
        select(IdempotentRequest).where(
            IdempotentRequest.caller == caller, IdempotentRequest.key == key
        )
    ).first()


def _claim(api: Any, slot: tuple[str, str], request_hash: str) -> Replay | Conflict | datetime:
    """The moment of the claim (run the request: its marker is written), or a replay or a
    refusal. A marker left by a request that runs no more is taken over."""
    now: datetime = api.clock.now()
    owner = {"owner": asdict(this_process())}
    try:
        with transaction(api.engine) as session:
            found = _marker(session, slot)
            if found is not None and found.created_at <= now - KEPT_FOR:
                session.delete(found)
                session.flush()
                found = None
            if found is None:
                session.add(
                    IdempotentRequest(
                        caller=slot[0],
                        key=slot[1],
                        request_hash=request_hash,
                        status_code=IN_PROGRESS,
                        body=owner,
                        created_at=now,
                    )
                )
                return now
            if found.request_hash != request_hash:
                return Conflict(
                    "idempotency_key_reused", "This Idempotency-Key was used with another request."
                )
            if found.status_code != IN_PROGRESS:
                return Replay(found.status_code, found.body)
            if not _abandoned(found, slot, now):
                return IN_USE
            taken = session.execute(
                update(IdempotentRequest)
                .where(
                    IdempotentRequest.id == found.id,
                    IdempotentRequest.status_code == IN_PROGRESS,
                    IdempotentRequest.created_at == found.created_at,
                )
                .values(body=owner, created_at=now)
                .execution_options(synchronize_session=False)
            )
            rowcount: int = getattr(taken, "rowcount", 0)
            return now if rowcount == 1 else IN_USE
    except IntegrityError:  # another request inserted the key's marker first
        return IN_USE


def _ours(session: Session, slot: tuple[str, str], at: datetime) -> IdempotentRequest | None:
    """The key's marker if it is still the one this request wrote at `at` (not taken
    over by a retry after RUNNING_AT_MOST)."""
    row = _marker(session, slot)
    if row is None or row.status_code != IN_PROGRESS or row.created_at != at:
        return None
    return row


def _keep(api: Any, slot: tuple[str, str], at: datetime, status: int, kept: Any) -> None:
    with transaction(api.engine) as session:
        row = _ours(session, slot, at)
        if row is not None:
            row.status_code, row.body = status, kept


def _forget(api: Any, slot: tuple[str, str], at: datetime) -> None:
    with transaction(api.engine) as session:
        row = _ours(session, slot, at)
        if row is not None:
            session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == row.id))


async def _send_json(send: Send, status: int, stored: Any, *, replayed: bool) -> None:
    body = json.dumps(stored.get("json") if isinstance(stored, dict) else stored).encode()
    media = b"application/problem+json" if status >= 400 else b"application/json"
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
        if isinstance(stored, dict) and stored.get("withheld"):
            headers.append((WITHHELD, b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, status: int, code: str, detail: str) -> None:
    body = {"type": "about:blank", "title": "Conflict" if status == 409 else "Bad Request",
            "status": status, "code": code, "detail": detail}  # fmt: skip
    await _send_json(send, status, {"json": body}, replayed=False)
