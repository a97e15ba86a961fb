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
import queue
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
MAX_QUEUED = 4
"""Full batches waiting to be sent before `track` waits for room."""
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


Queued = tuple[list[dict[str, Any]], bool] | str | None
"""A batch to send and whether it holds a place of `max_queued` (full batches from
`track` do; flushed and late partial ones do not); TICK when a new batch starts filling
(the sender, idle until then, starts its clock); None stops the sender."""
TICK = "tick"


class EventBuffer:
    """The sync client's buffer: `track` from any thread, never waiting for the network
    unless `max_queued` full batches already wait to be sent (then it waits for room: the
    caller is slowed to what the server takes, and memory stays bounded). One daemon
    thread sends the batches in turn, and a partial batch once its oldest event has
    waited `interval` seconds. Whoever takes the pending events queues them in the same
    step (under the lock), so `flush()`, which waits for the queue, waits for them."""

    def __init__(
        self,
        http: SyncHttp,
        *,
        batch_size: int = BATCH_SIZE,
        interval: float = INTERVAL_SECONDS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._http = http
        self.batch_size = batch_size
        self.interval = interval
        self.stats = Stats()
        self.failed: list[tuple[list[dict[str, Any]], BaseException]] = []
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()  # guards _pending, _oldest, _closed, _thread
        self._queue: queue.Queue[Queued] = queue.Queue()
        self._room = threading.Semaphore(max_queued)
        self._closed = False
        self._finished = False  # closed and the sender stopped
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
        with self._lock:
            if self._closed:
                raise RuntimeError("the event buffer is closed")
            self._start()
            if not self._pending:
                self._oldest = _monotonic()
                self._queue.put(TICK)
            self._pending.append(event)
            full = len(self._pending) >= self.batch_size
        if full:
            self._room.acquire()  # outside the lock: the sender needs it to make room
            with self._lock:
                batch = self._pending[: self.batch_size]
                self._pending = self._pending[self.batch_size :]
                if batch:
                    self._queue.put((batch, True))
            if not batch:  # another thread's track or a flush took them meanwhile
                self._room.release()
        return str(event["id"])

    @property
    def pending(self) -> int:
        """Events tracked and not yet queued for sending (the batch being filled)."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        """Send everything buffered and wait for the answers; raise the first error of a
        batch that could not be sent."""
        with self._lock:
            if self._pending:
                self._start()
                self._queue.put((self._pending, False))
                self._pending = []
        self._queue.join()
        self._raise_failed()

    def close(self) -> None:
        """Send what is left and stop the sending thread."""
        with self._lock:
            if self._finished:
                return
            self._closed = True
            thread = self._thread
        try:
            self.flush()
        finally:
            if thread is not None:
                self._queue.put(None)
                thread.join()
            self._finished = True

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tabkeeper-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                due = self._oldest + self.interval if self._pending else None
            wait = None if due is None else max(0.0, due - _monotonic())  # idle: until a TICK
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                with self._lock:
                    if self._pending and _monotonic() >= self._oldest + self.interval:
                        self._queue.put((self._pending, False))
                        self._pending = []
                continue
            try:
                if item is None:
                    return
                if isinstance(item, tuple):
                    batch, holds_room = item
                    self._send(batch)
                    if holds_room:
                        self._room.release()
            finally:
                self._queue.task_done()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            answer = self._http._call("POST", PATH, body={"events": batch}, retry=True)
        except Exception as error:  # kept for flush/close: the sending thread cannot raise
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


class AsyncEventBuffer:
    """The async client's buffer: `await track(...)` returns at once unless `max_queued`
    full batches wait to be sent (then it waits for room). One task sends the batches in
    turn, and a partial batch once its oldest event has waited `interval` seconds."""

    def __init__(
        self,
        http: AsyncHttp,
        *,
        batch_size: int = BATCH_SIZE,
        interval: float = INTERVAL_SECONDS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._http = http
        self.batch_size = batch_size
        self.interval = interval
        self.max_queued = max_queued
        self.stats = Stats()
        self.failed: list[tuple[list[dict[str, Any]], BaseException]] = []
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._queue: asyncio.Queue[Queued] | None = None
        self._room: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._finished = False

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
        queued, room = self._start()
        if not self._pending:
            self._oldest = _monotonic()
            queued.put_nowait(TICK)
        self._pending.append(event)
        if len(self._pending) >= self.batch_size:
            await room.acquire()
            batch = self._pending[: self.batch_size]
            self._pending = self._pending[self.batch_size :]
            if batch:
                queued.put_nowait((batch, True))
            else:  # another track or a flush took them while this one waited for room
                room.release()
        return str(event["id"])

    @property
    def pending(self) -> int:
        """Events tracked and not yet queued for sending (the batch being filled)."""
        return len(self._pending)

    async def flush(self) -> None:
        """Send everything buffered and wait for the answers; raise the first error of a
        batch that could not be sent."""
        if self._pending:
            self._start()[0].put_nowait((self._pending, False))
            self._pending = []
        if self._queue is not None:
            await self._queue.join()
        if self.failed:
            first, error = self.failed[0]
            raise RuntimeError(
                f"{len(self.failed)} batch(es) of events not sent (first: {len(first)} "
                f"events): {error}; they are in AsyncEventBuffer.failed"
            ) from error

    async def aclose(self) -> None:
        """Send what is left and stop the sending task."""
        if self._finished:
            return
        self._closed = True
        try:
            await self.flush()
        finally:
            if self._queue is not None and self._task is not None:
                self._queue.put_nowait(None)
                await self._task
            self._finished = True

    def _start(self) -> tuple[asyncio.Queue[Queued], asyncio.Semaphore]:
        if self._queue is None or self._room is None:
            self._queue, self._room = asyncio.Queue(), asyncio.Semaphore(self.max_queued)
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(self._queue, self._room))
        return self._queue, self._room

    async def _run(self, queued: asyncio.Queue[Queued], room: asyncio.Semaphore) -> None:
        while True:
            due = self._oldest + self.interval if self._pending else None
            wait = None if due is None else max(0.0, due - _monotonic())  # idle: until a TICK
            try:
                item = await asyncio.wait_for(queued.get(), wait)
            except TimeoutError:
                if self._pending and _monotonic() >= self._oldest + self.interval:
                    queued.put_nowait((self._pending, False))
                    self._pending = []
                continue
            try:
                if item is None:
                    return
                if isinstance(item, tuple):
                    batch, holds_room = item
                    await self._send(batch)
                    if holds_room:
                        room.release()
            finally:
                queued.task_done()

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            answer = await self._http._call("POST", PATH, body={"events": batch}, retry=True)
        except Exception as error:
            self.failed.append((batch, error))
            return
        self.stats.add(batch, answer)


def _monotonic() -> float:
    return time.monotonic()
