"""Plan changes through the API (SUB-4, SUB-5): immediately, at the period's end, on a
custom date or by the platform's default; cancel the scheduled change; approve a held
downgrade; the platform's restrictions; bad changes change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.tables import ScheduledChange
from tests.api.billing import (
    make_billing_world,
    make_organization,
    problem,
    subscribe,
    the_subscription,
)
from tests.api.conftest import ApiWorld, Client
from tests.integration.conftest import FEB_1, JAN_1


@pytest.fixture
def acme(billing_api: ApiWorld) -> Client:
    """acme's owner (alice), acme subscribed to Basic on Jan 1."""
    make_organization(billing_api)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    return alice


def test_change_immediately_upgrades_at_once(billing_api: ApiWorld, acme: Client) -> None:
    """SUB-4, SUB-5: an immediate upgrade is applied now and bills the prorated part."""
    card = the_subscription(acme)
    billing_api.world.clock.set(JAN_1 + timedelta(days=10))
    acme = billing_api.member("acme", "alice")  # a portal session lasts an hour
    change = acme.post(
        f"/v1/subscriptions/{card['id']}/change", {"plan": "pro", "when": "immediately"}
    )
    assert change.status_code == 200, change.text
    assert change.json()["status"] == "applied" and change.json()["is_upgrade"] is True
    assert change.json()["requested_by"] == "alice"
    after = the_subscription(acme)
    assert (after["plan"], after["upcoming"]) == ("pro", None)
    invoices = acme.get("/v1/invoices", organization="acme").json()["data"]
    assert len(invoices) == 2 and invoices[1]["amount_due_minor"] > 0


@pytest.mark.parametrize(
    ("when", "starts_at", "timing"),
    [
        ("period_end", "2026-02-01T00:00:00Z", "period_end"),
        ("2026-01-20T12:00:00Z", "2026-01-20T12:00:00Z", "date"),
        ("2026-01-20T13:00:00+01:00", "2026-01-20T12:00:00Z", "date"),
    ],
)
def test_a_later_change_shows_as_upcoming_and_happens_at_its_time(
    billing_api: ApiWorld, acme: Client, when: str, starts_at: str, timing: str
) -> None:
    """SUB-4, SUB-1: a change at the period's end or on a custom date waits; the card
    shows it as "Upcoming subscription" with its start; the billing clock applies it."""
    card = the_subscription(acme)
    change = acme.post(f"/v1/subscriptions/{card['id']}/change", {"plan": "pro", "when": when})
    assert change.status_code == 200, change.text
    assert (change.json()["status"], change.json()["timing"]) == ("scheduled", timing)
    upcoming = the_subscription(acme)["upcoming"]
    assert upcoming["plan"] == "pro" and upcoming["plan_name"] == "Pro"
    assert (upcoming["starts_at"], upcoming["timing"]) == (starts_at, timing)
    assert upcoming["badge"] == "Upcoming subscription" and upcoming["status"] == "scheduled"
    assert the_subscription(acme)["plan"] == "basic"
    billing_api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    after = the_subscription(billing_api.platform)
    assert (after["plan"], after["upcoming"]) == ("pro", None)


def test_change_without_when_takes_the_platform_default(acme: Client) -> None:
    """SUB-4: with no timing, an upgrade's default (immediately) applies."""
    card = the_subscription(acme)
    change = acme.post(f"/v1/subscriptions/{card['id']}/change", {"plan": "pro", "when": None})
    assert change.json()["timing"] == "immediately" and change.json()["status"] == "applied"


def test_cancel_the_scheduled_change(billing_api: ApiWorld, acme: Client) -> None:
    """SUB-4: "Cancel scheduled plan" drops the upcoming change; the renewal keeps Basic."""
    card = the_subscription(acme)
    path = f"/v1/subscriptions/{card['id']}"
    acme.post(f"{path}/change", {"plan": "pro", "when": "2026-01-20T00:00:00Z"})
    canceled = acme.post(f"{path}/cancel_scheduled_change")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert the_subscription(acme)["upcoming"] is None
    problem(acme.post(f"{path}/cancel_scheduled_change"), 409, "no_scheduled_change")
    billing_api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    assert the_subscription(billing_api.platform)["plan"] == "basic"


def test_a_held_downgrade_waits_for_the_operator(engine: Engine) -> None:
    """SUB-4: with plan_changes.downgrade_approval the downgrade waits as a request; only
    the platform (the operator) approves it; then it happens at its timing."""
    api = make_billing_world(engine, {"plan_changes": {"downgrade_approval": True}})
    make_organization(api)
    alice = api.member("acme", "alice")
    card = subscribe(api, alice, plan="pro")
    path = f"/v1/subscriptions/{card['id']}"
    change = alice.post(f"{path}/change", {"plan": "basic"})
    assert change.json()["status"] == "awaiting_approval" and change.json()["is_upgrade"] is False
    assert the_subscription(alice)["upcoming"]["status"] == "awaiting_approval"
    problem(alice.post(f"{path}/approve_change"), 403, "forbidden")
    approved = api.platform.post(f"{path}/approve_change")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "scheduled"
    assert approved.json()["starts_at"] == "2026-02-01T00:00:00Z"
    problem(api.platform.post(f"{path}/approve_change"), 409, "nothing_to_approve")
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    assert the_subscription(api.platform)["plan"] == "basic"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan": "platinum"}, 400, "unknown_plan"),
        ({"plan": "basic"}, 409, "same_plan"),
        ({"plan": "pro", "when": "2025-12-31T00:00:00Z"}, 409, "date_in_past"),
        ({"plan": "pro", "when": "tomorrow"}, 400, "invalid_timing"),
        ({"plan": "pro", "when": "date"}, 400, "invalid_timing"),
        ({"plan": "pro", "when": "2026-03-01"}, 400, "invalid_timing"),
        ({"plan": "pro", "when": "2026-13-01T00:00:00Z"}, 400, "invalid_timing"),
        ({"plan": "pro", "when": "Immediately"}, 400, "invalid_timing"),
        ({"plan": "pro", "timing": "immediately"}, 422, "invalid_request"),
        ({"plan": "pro", "when": 5}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
    ],
)
def test_bad_changes_change_nothing(
    billing_api: ApiWorld, acme: Client, body: dict[str, Any], status: int, code: str
) -> None:
    """SUB-4: unknown plan, the current plan, a custom date in the past, timings that
    are not one, unknown fields: problem+json with a stable code, nothing changed."""
    before = the_subscription(acme)
    problem(acme.post(f"/v1/subscriptions/{before['id']}/change", body), status, code)
    assert the_subscription(acme) == before
    assert billing_api.world.count(ScheduledChange) == 0


def test_the_platform_can_restrict_the_timings(engine: Engine) -> None:
    """SUB-4: a platform that allows downgrades only at the period's end refuses an
    immediate one (timing_not_allowed) and changes nothing."""
    api = make_billing_world(engine, {"plan_changes": {"downgrade": ["period_end"]}})
    make_organization(api)
    alice = api.member("acme", "alice")
    card = subscribe(api, alice, plan="pro")
    path = f"/v1/subscriptions/{card['id']}/change"
    refused = problem(
        alice.post(path, {"plan": "basic", "when": "immediately"}), 409, "timing_not_allowed"
    )
    assert "period_end" in refused["detail"]
    assert the_subscription(alice) == card
    assert alice.post(path, {"plan": "basic"}).json()["timing"] == "period_end"
