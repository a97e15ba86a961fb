"""OPS-2: `GET /metrics` in Prometheus' text format, scraped before and after each kind of
work, shows every metric moving: request latency per route template, the check's latency
and decisions by reason, events accepted/duplicate/refused, due-work lag, the outbox's
backlog and failed deliveries, payment attempts by outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tabkeeper.clock import SystemClock
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.settings import Settings
from tests.api.billing import ACME, make_organization, subscribe
from tests.api.conftest import ApiWorld, make_api_world
from tests.api.test_metering import CATALOG, message

LOCAL = Settings(database_url="sqlite://", webhook_allowed_hosts="127.0.0.1")
"""The webhook endpoint below is on 127.0.0.1: allowed by name (notify/addresses.py)."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: ApiWorld) -> Samples:
    answer = api.platform.http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def api(engine: Engine) -> ApiWorld:
    """acme on Team (10 sessions) since Jan 1, paid by card, with a webhook endpoint that
    refuses every connection (port 1 of 127.0.0.1)."""
    api = make_api_world(engine, app_settings=LOCAL)
    assert api.platform.post("/v1/catalog", {"catalog": CATALOG}).status_code == 201
    make_organization(api, ACME)
    subscribe(api, api.member("acme", "alice"), "acme", "team")
    made = api.platform.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:1/hook"})
    assert made.status_code == 201, made.text
    return api


def test_ops2_metrics_move_with_requests_checks_and_events(api: ApiWorld) -> None:
    """OPS-2: latency per route template (no raw path), the check's latency and decisions
    by reason, session starts by reason, events accepted, duplicate and refused."""
    before = scrape(api)
    events = [message("e1", "k1"), message("e2", "k1"), message("e1", "k1"), {"id": "bad"}]
    answer = api.platform.post("/v1/events", {"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2 and answer.json()["duplicates"] == 1
    check = {"organization": "acme", "action": "start_session"}
    assert api.platform.post("/v1/check", check).json()["allowed"] is True
    refused = {"organization": "acme", "action": "use_ai", "feature": "kb_answer"}
    assert api.platform.post("/v1/check", refused).json()["reason"] == "feature_not_in_plan"
    start = {"organization": "acme", "agent": "bot", "conversation": "k9"}
    assert api.platform.post("/v1/sessions/start", start).json()["allowed"] is True
    assert api.platform.get("/v1/organizations/acme").status_code == 200
    after = scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tabkeeper_events_total", outcome="accepted") == 2
    assert moved("tabkeeper_events_total", outcome="duplicate") == 1
    assert moved("tabkeeper_events_total", outcome="refused") == 1
    assert moved("tabkeeper_check_duration_seconds_count") == 2
    assert moved("tabkeeper_check_duration_seconds_sum") > 0
    assert moved("tabkeeper_decisions_total", operation="check", reason="ok") == 1
    assert moved("tabkeeper_decisions_total", operation="check", reason="feature_not_in_plan") == 1
    assert moved("tabkeeper_decisions_total", operation="sessions.start", reason="ok") == 1
    latency = "tabkeeper_http_request_duration_seconds_count"
    assert moved(latency, method="POST", route="/v1/check", status="200") == 2
    assert moved(latency, method="POST", route="/v1/events", status="200") == 1
    assert moved(latency, method="GET", route="/v1/organizations/{code}", status="200") == 1
    routes = {dict(labels).get("route") for (_name, labels) in after}
    assert not any(route and "acme" in route for route in routes)  # templates, not paths


def test_ops2_metrics_show_lag_backlog_failed_deliveries_and_payments(api: ApiWorld) -> None:
    """OPS-2: the due-work lag grows while a renewal waits and is 0 once done; the
    payment attempt it makes is counted by outcome; a notice for an endpoint that refuses
    every connection waits in the outbox, then fails for good."""
    world = api.world
    dispatcher = Dispatcher(world.engine, world.clock, LOCAL, wall_clock=SystemClock())
    first = scrape(api)
    assert value(first, "tabkeeper_due_work_lag_seconds") == 0
    dispatcher.tick()  # the subscription's notices fan out to the endpoint; each try fails
    waiting = scrape(api)
    assert value(waiting, "tabkeeper_outbox_backlog") > value(first, "tabkeeper_outbox_backlog")
    assert value(waiting, "tabkeeper_deliveries_failed") == 0

    world.clock.set(world.clock.now().replace(month=2, day=1) + timedelta(minutes=10))
    late = scrape(api)
    assert value(late, "tabkeeper_due_work_lag_seconds") >= 600  # the renewal, 10 min late
    assert value(late, "tabkeeper_delivery_lag_seconds") > 0
    succeeded = value(late, "tabkeeper_payment_attempts", outcome="succeeded")
    world.worker().tick()
    renewed = scrape(api)
    assert value(renewed, "tabkeeper_due_work_lag_seconds") == 0
    assert value(renewed, "tabkeeper_payment_attempts", outcome="succeeded") == succeeded + 1

    for _attempt in range(12):  # the retries give up after 3 days
        world.clock.advance(timedelta(hours=12))
        dispatcher.tick()
    given_up = scrape(api)
    assert value(given_up, "tabkeeper_deliveries_failed") > 0
    assert value(given_up, "tabkeeper_outbox_backlog") < value(waiting, "tabkeeper_outbox_backlog")
