"""`GET /metrics` in Prometheus' text format (OPS-2), with prometheus-client.

Counted as requests are answered, in the process that answers them:
- `tabkeeper_http_request_duration_seconds{method,route,status}`: a histogram per route
  template (`/v1/organizations/{code}`, never the raw path, so ids make no new series;
  `unmatched` for a path no route takes), observed by api/observe.py;
- `tabkeeper_check_duration_seconds`: the check's own time (`POST /v1/check`, from the
  route's call of the service to its answer);
- `tabkeeper_decisions_total{operation,reason}`: the answers of the check and of session
  starts by reason (`ok` when allowed, else the refusal's reason);
- `tabkeeper_events_total{outcome}`: events `accepted` (stored and counted now),
  `duplicate` (stored before) and `refused`, from the counts the ingestion answers with.

Read from the database when scraped (db/metrics.py: exact across all API and worker
processes, whichever one is scraped):
- `tabkeeper_due_work_lag_seconds`: how late the oldest due billing work is (0 when none
  is waiting); `tabkeeper_delivery_lag_seconds` the same for notice deliveries;
- `tabkeeper_outbox_backlog`: deliveries waiting (pending or being sent);
- `tabkeeper_deliveries_failed`: deliveries given up;
- `tabkeeper_payment_attempts{outcome}`: payment attempts by outcome.

Several processes (`tabkeeper serve --workers N`): prometheus-client's multi-process mode.
`serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the API processes
start (the variable is read when prometheus_client is first imported); each process then
writes its counts to memory-mapped files there, and a scrape of any process adds up the
files of all of them. One process: the counts live in this module's registry.

The cost per request is one histogram observation (a child looked up in a dict, a bucket
found by bisection); counting a decision or a batch's events is one increment each.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from tabkeeper.clock import Clock
from tabkeeper.db.metrics import read_backlog

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds; the check is answered in about a millisecond, so the low buckets are fine."""

if os.environ.get(MULTIPROCESS_DIR):  # its files are opened as the metrics are made below
    os.makedirs(os.environ[MULTIPROCESS_DIR], exist_ok=True)
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Histogram(
    "tabkeeper_http_request_duration_seconds",
    "Time to answer a request, by route template, method and status.",
    ("method", "route", "status"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CHECKS = Histogram(
    "tabkeeper_check_duration_seconds",
    "Time the real-time check (POST /v1/check) took to decide.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DECISIONS = Counter(
    "tabkeeper_decisions",
    "Answers of the check and of session starts, by operation and reason (ok: allowed).",
    ("operation", "reason"),
    registry=REGISTRY,
)
EVENTS = Counter(
    "tabkeeper_events",
    "Usage events by outcome: accepted, duplicate (accepted before), refused.",
    ("outcome",),
    registry=REGISTRY,
)
ACCEPTED, DUPLICATE, REFUSED = (EVENTS.labels(o) for o in ("accepted", "duplicate", "refused"))

_request_children: dict[tuple[str, str, int], Any] = {}
_decision_children: dict[tuple[str, str], Any] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUESTS.labels(method, route, str(status))
    child.observe(seconds)


def count_decision(operation: str, reason: str) -> None:
    key = (operation, reason)
    child = _decision_children.get(key)
    if child is None:
        child = _decision_children[key] = DECISIONS.labels(operation, reason)
    child.inc()


def count_events(accepted: int, duplicates: int, refused: int) -> None:
    """One ingestion's answer (its counts: stored now, already stored, refused)."""
    if accepted:
        ACCEPTED.inc(accepted)
    if duplicates:
        DUPLICATE.inc(duplicates)
    if refused:
        REFUSED.inc(refused)


class DatabaseFigures(Collector):
    """The figures read from the database at each scrape (db/metrics.py)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        backlog = read_backlog(self.engine, now)
        for name, oldest, what in (
            ("tabkeeper_due_work_lag_seconds", backlog.oldest_due_work, "billing work"),
            ("tabkeeper_delivery_lag_seconds", backlog.oldest_due_delivery, "notice delivery"),
        ):
            lag = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            yield GaugeMetricFamily(name, f"How late the oldest due {what} is.", value=lag)
        deliveries = backlog.deliveries
        waiting = deliveries.get("pending", 0) + deliveries.get("sending", 0)
        yield GaugeMetricFamily(
            "tabkeeper_outbox_backlog", "Notice deliveries waiting to be sent.", value=waiting
        )
        yield GaugeMetricFamily(
            "tabkeeper_deliveries_failed",
            "Notice deliveries given up after their retries.",
            value=deliveries.get("failed", 0),
        )
        attempts = GaugeMetricFamily(
            "tabkeeper_payment_attempts",
            "Payment attempts by outcome (processing, succeeded, failed).",
            labels=("outcome",),
        )
        for outcome in ("processing", "succeeded", "failed"):
            attempts.add_metric((outcome,), backlog.payment_attempts.get(outcome, 0))
        yield attempts


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


def scrape(engine: Engine, clock: Clock) -> tuple[bytes, str]:
    """The text of a scrape and its content type: this process's counts (or, with several
    processes, those of all of them) and the database's figures."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Own())
    registry.register(DatabaseFigures(engine, clock))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Own(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
