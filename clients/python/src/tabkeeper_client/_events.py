"""`events.track()`: usage events buffered and sent in batches.

Each event gets its id here, when it is tracked (`ev_` and 32 random hex digits, or the
caller's own), and its `time` (now, UTC) unless given, so a batch sent twice (a retry
after a lost answer) is counted once by the server: a repeated id is a duplicate (USE-1).
A batch goes when the buffer holds `batch_size` events (1,000, the API's most), when
its oldest event has waited `interval` seconds (1), on `flush()` and on `close()`.
A batch the server refuses whole, or that cannot be sent after the retries, is kept in
`failed` and its error raised by the next `flush()` or `close()`; events refused one by
one (`refused` in the answer) are counted in `stats` with their reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tabkeeper_client._http import AsyncHttp, SyncHttp

BATCH_SIZE = 1000
INTERVAL_SECONDS = 1.0
PATH = "/v1/events"


def new_event_id() -> str:
    return f"ev_{uuid.uuid4().hex}"


def make_event(
    type: str,
    org: str,
    *,
    agent: str | None,
    conversation: str | None,
    properties: Mapping[str, Any] | None,
    time: datetime | str | None,
    id: str | None,
) -> dict[str, Any]:
    when = time if time is not None else datetime.now(UTC)
    event: dict[str, Any] = {
        "id": id or new_event_id(),
        "type": type,
        "org": org,
        "time": when.isoformat().replace("+00:00", "Z") if isinstance(when, datetime) else when,
    }
    if agent is not None:
        event["agent"] = agent
    if conversation is not None:
        event["conversation"] = conversation
    if properties:
        event["properties"] = dict(properties)
    return event


@dataclass
class Stats:
    """What the server answered for the batches sent so far."""

    sent: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)

    def add(self, batch: list[dict[str, Any]], answer: Mapping[str, Any]) -> None:
        self.sent += len(batch)
        self.batches += 1
        self.accepted += int(answer.get("accepted", 0))
        self.duplicates += int(answer.get("duplicates", 0))
        for refusal in answer.get("refused", []):
            self.refused.append({**refusal, "id": batch[int(refusal["index"])]["id"]})


class EventBuffer:
    """The sync client's buffer: `track` from any thread; a daemon thread sends what has
    waited `interval` seconds; a full batch is sent by the `track` that filled it."""

    def __init__(
        self, http: SyncHttp, *, batch_size: int = BATCH_SIZE, interval: float = INTERVAL_SECONDS
    ) -> None:
        self._http = http
        self.batch_size = batch_size
        self.interval = interval
        self.stats = Stats()
        self.failed: list[tuple[list[dict[str, Any]], BaseException]] = []
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()  # guards _pending
        self._sending = threading.Lock()  # one batch on the wire at a time, in order
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None

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
        """Buffer one event; returns its id."""
        event = make_event(
            type, org, agent=agent, conversation=conversation, properties=properties,
            time=time, id=id,
        )  # fmt: skip
        batch = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the event buffer is closed")
            if not self._pending:
                self._oldest = _monotonic()
                self._start_timer()
            self._pending.append(event)
            if len(self._pending) >= self.batch_size:
                batch, self._pending = self._pending, []
        if batch is not None:
            self._send(batch)
        return str(event["id"])

    def flush(self) -> None:
        """Send everything buffered now; raise the first error of a failed batch."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._send(batch)
        self._raise_failed()

    def close(self) -> None:
        """Send what is left and stop the timer thread."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        with self._sending:
            try:
                answer = self._http._call("POST", PATH, body={"events": batch}, retry=True)
            except Exception as error:  # kept for flush/close: the timer thread cannot raise
                self.failed.append((batch, error))
                return
            self.stats.add(batch, answer)

    def _raise_failed(self) -> None:
        if self.failed:
            batch, error = self.failed[0]
            raise RuntimeError(
                f"{len(self.failed)} batch(es) of events not sent (first: {len(batch)} "
                f"events): {error}; they are in EventBuffer.failed"
            ) from error

    def _start_timer(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tabkeeper-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    due = self._oldest + self.interval if self._pending else None
                    wait = None if due is None else due - _monotonic()
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(wait if wait is not None else self.interval)
                if self._closed:
                    return
                batch, self._pending = self._pending, []
            if batch:
                self._send(batch)


class AsyncEventBuffer:
    """The async client's buffer: `await track(...)`; a task sends what has waited
    `interval` seconds; a full batch is sent by the `track` that filled it."""

    def __init__(
        self, http: AsyncHttp, *, batch_size: int = BATCH_SIZE, interval: float = INTERVAL_SECONDS
    ) -> None:
        self._http = http
        self.batch_size = batch_size
        self.interval = interval
        self.stats = Stats()
        self.failed: list[tuple[list[dict[str, Any]], BaseException]] = []
        self._pending: list[dict[str, Any]] = []
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

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
        """Buffer one event; returns its id."""
        if self._closed:
            raise RuntimeError("the event buffer is closed")
        event = make_event(
            type, org, agent=agent, conversation=conversation, properties=properties,
            time=time, id=id,
        )  # fmt: skip
        self._pending.append(event)
        if len(self._pending) >= self.batch_size:
            batch, self._pending = self._pending, []
            await self._send(batch)
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._later())
        return str(event["id"])

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            await self._send(batch)
        if self.failed:
            batch, error = self.failed[0]
            raise RuntimeError(
                f"{len(self.failed)} batch(es) of events not sent: {error}"
            ) from error

    async def aclose(self) -> None:
        self._closed = True
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()

    async def _later(self) -> None:
        """Send what has waited `interval`; again while events came in during a send
        (no track after them would start another timer)."""
        while True:
            await asyncio.sleep(self.interval)
            batch, self._pending = self._pending, []
            if batch:
                await self._send(batch)
            if not self._pending:
                return

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            answer = await self._http._call("POST", PATH, body={"events": batch}, retry=True)
        except Exception as error:
            self.failed.append((batch, error))
            return
        self.stats.add(batch, answer)


def _monotonic() -> float:
    return time.monotonic()
