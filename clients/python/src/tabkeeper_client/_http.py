"""The one place requests are made: authentication, JSON, problems as ApiError, and
retries with backoff for calls that are safe to send twice.

A call is retried (at most `Retry.attempts` tries in all) on a connection error or
timeout, a 429, or a 500/502/503/504 answer, and only when sending it twice cannot do
twice what it asks for: GET, PUT and DELETE; `POST /v1/check` (it reads only); a POST
with an Idempotency-Key (the server answers a retry with the first answer, and a 409
`request_in_progress` there means "try again soon"); and calls a hot path marks safe
(a batch of events whose every event carries its id). Anything else is sent once, and
an error is raised as it came.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_POSTS = frozenset({"/v1/check"})
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """An error answer (RFC 9457 problem): `status`, the stable `code` for programs, the
    `detail` for people and the whole `problem` document."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.code = str(problem.get("code", f"http_{status}"))
        self.detail = str(problem.get("detail", problem.get("title", "")))
        super().__init__(f"{status} {self.code}: {self.detail}")


@dataclass(frozen=True)
class Retry:
    """How retries back off: `attempts` tries in all; the wait before try n+1 is
    `base * 2**(n-1)` seconds, at most `cap`, with full jitter; a Retry-After header of at
    most `cap` seconds is waited instead."""

    attempts: int = 4
    base: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int, answer: httpx.Response | None) -> float:
        if answer is not None:
            after = answer.headers.get("retry-after")
            if after is not None and after.isdigit():
                return min(float(after), self.cap)
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


NO_RETRY = Retry(attempts=1)


def _retryable(answer: httpx.Response, keyed: bool) -> bool:
    if answer.status_code in RETRY_STATUSES:
        return True
    if keyed and answer.status_code == 409:
        return _code(answer) == "request_in_progress"
    return False


def _code(answer: httpx.Response) -> str | None:
    try:
        document = answer.json()
    except ValueError:
        return None
    return document.get("code") if isinstance(document, dict) else None


def _safe(method: str, path: str, idempotency_key: str | None, retry: bool | None) -> bool:
    if retry is not None:
        return retry
    return method in {"GET", "PUT", "DELETE", "HEAD"} or path in SAFE_POSTS or bool(idempotency_key)


def _headers(idempotency_key: str | None) -> dict[str, str] | None:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else None


def _query(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not query:
        return None
    return {k: v for k, v in query.items() if v is not None} or None


def _content(body: Any) -> bytes | None:
    if body is None:
        return None
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _raise_for(answer: httpx.Response) -> None:
    if answer.status_code < 400:
        return
    try:
        problem = answer.json()
    except ValueError:
        problem = {"detail": answer.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    raise ApiError(answer.status_code, problem)


def _auth(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "User-Agent": "tabkeeper-client-python/0.1",
    }


class SyncHttp:
    """Requests on one httpx.Client (kept-alive connections; safe across threads)."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        retry: Retry,
        timeout: float,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.retry = retry
        self.client = httpx.Client(
            base_url=base_url, headers=_auth(api_key), timeout=timeout, transport=transport
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        safe = _safe(method, path, idempotency_key, retry)
        attempts = self.retry.attempts if safe else 1
        content, params, headers = _content(body), _query(query), _headers(idempotency_key)
        for attempt in range(1, attempts + 1):
            try:
                answer = self.client.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError:
                if attempt == attempts:
                    raise
                time.sleep(self.retry.delay(attempt, None))
                continue
            if attempt < attempts and _retryable(answer, bool(idempotency_key)):
                time.sleep(self.retry.delay(attempt, answer))
                continue
            _raise_for(answer)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
    ) -> Any:
        answer = self.send(
            method, path, query=query, body=body, idempotency_key=idempotency_key, retry=retry
        )
        return answer.json() if answer.content else None

    def _call_bytes(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> bytes:
        return self.send(
            method, path, query=query, body=body, idempotency_key=idempotency_key
        ).content

    def close(self) -> None:
        self.client.close()


class AsyncHttp:
    """The same on one httpx.AsyncClient."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        retry: Retry,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.retry = retry
        self.client = httpx.AsyncClient(
            base_url=base_url, headers=_auth(api_key), timeout=timeout, transport=transport
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        safe = _safe(method, path, idempotency_key, retry)
        attempts = self.retry.attempts if safe else 1
        content, params, headers = _content(body), _query(query), _headers(idempotency_key)
        for attempt in range(1, attempts + 1):
            try:
                answer = await self.client.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError:
                if attempt == attempts:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, None))
                continue
            if attempt < attempts and _retryable(answer, bool(idempotency_key)):
                await asyncio.sleep(self.retry.delay(attempt, answer))
                continue
            _raise_for(answer)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        retry: bool | None = None,
    ) -> Any:
        answer = await self.send(
            method, path, query=query, body=body, idempotency_key=idempotency_key, retry=retry
        )
        return answer.json() if answer.content else None

    async def _call_bytes(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> bytes:
        answer = await self.send(
            method, path, query=query, body=body, idempotency_key=idempotency_key
        )
        return answer.content

    async def aclose(self) -> None:
        await self.client.aclose()
