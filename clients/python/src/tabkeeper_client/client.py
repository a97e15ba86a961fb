"""The clients: `Client` (sync) and `AsyncClient`, each the whole API (`client.invoices.list`,
`client.subscriptions.create`, …; generated in _api.py) plus the hot paths written by hand:

- `client.check(...)`: the real-time check; read-only, so retried like a GET.
- `client.sessions.start(...)` and `client.credits.consume(...)`: an Idempotency-Key is
  made for each call (unless given) and every retry sends the same one, so a start or a
  consumption whose answer was lost is done once.
- `client.events.track(...)`: buffered (_events.py): 1,000 a batch, or after 1 second,
  and on `close()`, sent by a thread (a task) of its own; every event has its id from
  the client, so a retried batch is counted once.
- `client.webhooks.verify(headers, body, secret)`: Standard Webhooks signatures.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import httpx

from tabkeeper_client._api import (
    Api,
    AsyncApi,
    AsyncCreditsApi,
    AsyncEventsApi,
    AsyncSessionsApi,
    Consumed,
    ConsumeIn,
    CreditsApi,
    Decision,
    EventsApi,
    EventsResult,
    SessionsApi,
    SessionStartIn,
)
from tabkeeper_client._events import BATCH_SIZE, INTERVAL_SECONDS, AsyncEventBuffer, EventBuffer
from tabkeeper_client._http import DEFAULT_BASE_URL, AsyncHttp, Retry, SyncHttp
from tabkeeper_client.webhooks import Webhooks


def new_idempotency_key() -> str:
    return f"tkc_{uuid.uuid4().hex}"


def _all_ids(body: Mapping[str, Any]) -> bool:
    events = body.get("events")
    return isinstance(events, list) and all(isinstance(e, dict) and e.get("id") for e in events)


# ---------------------------------------------------------------- sync
class Sessions(SessionsApi):
    def __init__(self, http: SyncHttp) -> None:
        super().__init__(http)
        self._sync = http

    def start(self, body: SessionStartIn, *, idempotency_key: str | None = None) -> Decision:
        """`POST /v1/sessions/start`: check and reserve a billable session (LIM-3), with an
        Idempotency-Key (made here unless given) kept across retries."""
        key = idempotency_key or new_idempotency_key()
        answer = self._sync._call("POST", "/v1/sessions/start", body=body, idempotency_key=key)
        return cast(Decision, answer)


class Credits(CreditsApi):
    def __init__(self, http: SyncHttp) -> None:
        super().__init__(http)
        self._sync = http

    def consume(self, body: ConsumeIn, *, idempotency_key: str | None = None) -> Consumed:
        """`POST /v1/credits/consume`, retried with one Idempotency-Key (by default the
        use's own `id`, so a second call for the same use replays the first too)."""
        key = idempotency_key or f"consume:{body['id']}"
        answer = self._sync._call("POST", "/v1/credits/consume", body=body, idempotency_key=key)
        return cast(Consumed, answer)


class Events(EventsApi):
    def __init__(self, http: SyncHttp, buffer: EventBuffer) -> None:
        super().__init__(http)
        self._sync = http
        self.buffer = buffer

    def ingest(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> EventsResult:
        """`POST /v1/events` now, unbuffered; retried when every event has its `id` (a
        repeat is a duplicate, counted once) or an Idempotency-Key is given."""
        retry = True if _all_ids(body) or idempotency_key else None
        answer = self._sync._call(
            "POST", "/v1/events", body=body, idempotency_key=idempotency_key, retry=retry
        )
        return cast(EventsResult, answer)

    def track(
        self,
        type: str,
        org: str,
        *,
        agent: str | None = None,
        conversation: str | None = None,
        properties: Mapping[str, Any] | None = None,
        time: datetime | str | None = None,
        id: str | None = None,
    ) -> str:
        """Buffer one usage event (sent within a second, or with the next 1,000); its id."""
        return self.buffer.track(
            type, org, agent=agent, conversation=conversation, properties=properties,
            time=time, id=id,
        )  # fmt: skip

    def flush(self) -> None:
        self.buffer.flush()


class Client(Api):
    """The tabkeeper API over one httpx.Client. Close it (or use `with`) so the buffered
    events are sent."""

    events: Events
    sessions: Sessions
    credits: Credits

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        retry: Retry | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        batch_size: int = BATCH_SIZE,
        flush_interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.http = SyncHttp(
            api_key, base_url, retry=retry or Retry(), timeout=timeout, transport=transport
        )
        super().__init__(self.http)
        self.events = Events(
            self.http, EventBuffer(self.http, batch_size=batch_size, interval=flush_interval)
        )
        self.sessions = Sessions(self.http)
        self.credits = Credits(self.http)
        self.webhooks = Webhooks()

    def close(self) -> None:
        """Send the buffered events, then close the connections."""
        try:
            self.events.buffer.close()
        finally:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------- async
class AsyncSessions(AsyncSessionsApi):
    def __init__(self, http: AsyncHttp) -> None:
        super().__init__(http)
        self._async = http

    async def start(self, body: SessionStartIn, *, idempotency_key: str | None = None) -> Decision:
        """As `Sessions.start`."""
        key = idempotency_key or new_idempotency_key()
        answer = await self._async._call(
            "POST", "/v1/sessions/start", body=body, idempotency_key=key
        )
        return cast(Decision, answer)


class AsyncCredits(AsyncCreditsApi):
    def __init__(self, http: AsyncHttp) -> None:
        super().__init__(http)
        self._async = http

    async def consume(self, body: ConsumeIn, *, idempotency_key: str | None = None) -> Consumed:
        """As `Credits.consume`."""
        key = idempotency_key or f"consume:{body['id']}"
        answer = await self._async._call(
            "POST", "/v1/credits/consume", body=body, idempotency_key=key
        )
        return cast(Consumed, answer)


class AsyncEvents(AsyncEventsApi):
    def __init__(self, http: AsyncHttp, buffer: AsyncEventBuffer) -> None:
        super().__init__(http)
        self._async = http
        self.buffer = buffer

    async def ingest(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> EventsResult:
        """As `Events.ingest`."""
        retry = True if _all_ids(body) or idempotency_key else None
        answer = await self._async._call(
            "POST", "/v1/events", body=body, idempotency_key=idempotency_key, retry=retry
        )
        return cast(EventsResult, answer)

    async def track(
        self,
        type: str,
        org: str,
        *,
        agent: str | None = None,
        conversation: str | None = None,
        properties: Mapping[str, Any] | None = None,
        time: datetime | str | None = None,
        id: str | None = None,
    ) -> str:
        """As `Events.track` (awaits a send when it fills a batch)."""
        return await self.buffer.track(
            type, org, agent=agent, conversation=conversation, properties=properties,
            time=time, id=id,
        )  # fmt: skip

    async def flush(self) -> None:
        await self.buffer.flush()


class AsyncClient(AsyncApi):
    """The tabkeeper API over one httpx.AsyncClient. `await client.aclose()` (or `async
    with`) so the buffered events are sent."""

    events: AsyncEvents
    sessions: AsyncSessions
    credits: AsyncCredits

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        retry: Retry | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        batch_size: int = BATCH_SIZE,
        flush_interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.http = AsyncHttp(
            api_key, base_url, retry=retry or Retry(), timeout=timeout, transport=transport
        )
        super().__init__(self.http)
        self.events = AsyncEvents(
            self.http,
            AsyncEventBuffer(self.http, batch_size=batch_size, interval=flush_interval),
        )
        self.sessions = AsyncSessions(self.http)
        self.credits = AsyncCredits(self.http)
        self.webhooks = Webhooks()

    async def aclose(self) -> None:
        try:
            await self.events.buffer.aclose()
        finally:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
