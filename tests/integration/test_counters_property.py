"""The counters kept up to date as events arrive always equal a recount from the stored
events (USE-1, USE-3, USE-4, USE-5, USE-6, SUB-2), on SQLite and PostgreSQL.

Each example is a fresh organization with a sub-account on one world, subscribed to a
plain or an answered-only plan, renewed once by the billing clock (two billing periods).
Its events (messages of random conversations, directions and times across both periods,
calls of random durations, `interaction` events), in random order, in random batches,
with random duplicates, then go through the same ingestion the API and the simulator use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import count, pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import DueWork, Organization, Platform
from tabkeeper.db.tables_usage import BillingPeriod
from tabkeeper.domain.periods import Period
from tabkeeper.services import counters
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.organizations import create_organization, organization_by_code
from tabkeeper.services.subscriptions import plan_of, subscription_of
from tabkeeper.services.usage import ingest_batch, recount_usage
from tests.integration.conftest import World, make_world

SPAN = timedelta(days=58)
"""Shorter than any two monthly periods (28 + 31 days): every event falls in one of them."""
INCLUDES = {"sessions": 100, "minutes": 100, "interactions": 50}
CATALOG: dict[str, Any] = {
    "meters": {
        "sessions": {"kind": "billable_sessions"},
        "interactions": {"kind": "count", "event": "interaction"},
        "inbound": {"kind": "count", "event": "message", "filter": {"direction": "inbound"}},
        "minutes": {"kind": "sum", "event": "call.ended", "field": "duration_seconds",
                    "unit_seconds": 60, "rounding": "per_event_up"},
        "seconds": {"kind": "sum", "event": "call.ended", "field": "duration_seconds"},
        "talk": {"kind": "sum", "event": "call.ended", "field": "duration_seconds",
                 "unit_seconds": 60, "rounding": "total_up"},
        "longest": {"kind": "max", "event": "call.ended", "field": "duration_seconds"},
        "callers": {"kind": "unique_count", "event": "call.ended", "field": "caller"},
    },
    "plans": {
        "plain": {"name": "Plain", "price": "10.00", "includes": INCLUDES, "rank": 1},
        "answered": {"name": "Answered", "price": "10.00", "includes": INCLUDES, "rank": 2,
                     "answered_only": True},
    },
}  # fmt: skip

AGENTS = st.sampled_from([None, "a1", "a2"])
ORGS = st.sampled_from(["", "-sub"])
"""The organization itself or its sub-account (SUB-2)."""
OFFSETS = st.one_of(
    st.integers(0, int(SPAN.total_seconds()) - 1),
    st.integers(0, 57).map(lambda day: day * 86_400),  # exactly 24 h apart: window edges
)
DURATIONS = st.one_of(
    st.integers(0, 4_000), st.decimals(0, 400, places=2).map(lambda d: str(Decimal(d)))
)


def _message(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "org": ORGS,
            "agent": AGENTS,
            "conversation": st.sampled_from(["k1", "k2", "k3", "k4"]),
            "offset": OFFSETS,
            "properties": st.fixed_dictionaries(
                {"direction": st.sampled_from(["inbound", "outbound"])}
            ),
        }
    ).map(lambda e: {**e, "id": f"m{i}", "type": "message"})


def _call(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "org": ORGS,
            "agent": AGENTS,
            "offset": OFFSETS,
            "properties": st.fixed_dictionaries(
                {"duration_seconds": DURATIONS, "caller": st.sampled_from(["+1", "+2", "+3"])}
            ),
        }
    ).map(lambda e: {**e, "id": f"c{i}", "type": "call.ended"})


def _interaction(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"org": ORGS, "agent": AGENTS, "offset": OFFSETS}).map(
        lambda e: {**e, "id": f"i{i}", "type": "interaction"}
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[list[dict[str, Any]]]]:
    """A plan, and events in random order split into random batches with duplicates."""
    kinds = draw(st.lists(st.sampled_from([_message, _message, _call, _interaction]), max_size=40))
    events = [draw(kind(i)) for i, kind in enumerate(kinds)]
    repeated = draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
    shuffled = draw(st.permutations(events + repeated))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=4)))
    edges = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in pairwise(edges) if a < b]
    return draw(st.sampled_from(["plain", "answered"])), batches


def _setup(world: World, code: str, plan: str) -> tuple[Any, list[Period]]:
    """A new organization `code` with a sub-account, on `plan`, renewed once."""
    start = world.clock.now().replace(hour=0, minute=0, second=0) + timedelta(days=1)
    world.clock.set(start)
    with world.billing() as b:
        create_organization(b, code, {"owner": "owner"})
        create_organization(b, f"{code}-sub", {"owner": "owner"}, parent=code)
    world.subscribe(code, plan)
    world.worker().run_until(start + timedelta(days=32))  # the first renewal
    with transaction(world.engine) as session:
        owner_id = session.scalars(select(Organization.id).where(Organization.code == code)).one()
        # Later examples move the clock on: this organization renews no more.
        session.execute(
            update(DueWork)
            .where(DueWork.organization_id == owner_id, DueWork.status == "pending")
            .values(status="canceled")
        )
        periods = [
            Period(row.start, row.end, i)
            for i, row in enumerate(
                session.scalars(
                    select(BillingPeriod)
                    .where(BillingPeriod.organization_id == owner_id)
                    .order_by(BillingPeriod.start)
                )
            )
        ]
    assert len(periods) == 2 and periods[0].end == periods[1].start
    assert periods[1].end - periods[0].start > SPAN
    return start, periods


@dataclass
class Metered:
    """One world for all the examples of a test; each example takes a new code."""

    world: World
    codes: Iterator[int]


@pytest.fixture
def metered(engine: Engine) -> Metered:
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, CATALOG, world.clock.now())
    return Metered(world, count(1))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams())
def test_counters_equal_a_recount_of_the_stored_events(
    metered: Metered, stream: tuple[str, list[list[dict[str, Any]]]]
) -> None:
    """Property: USE-1, USE-3, USE-6: for random event streams in random order, in random
    batches with random duplicates, every meter's counter equals a recount from the
    stored events, in both periods, for plain and answered-only plans (USE-4)."""
    world = metered.world
    plan_code, batches = stream
    code = f"org{next(metered.codes)}"
    start, periods = _setup(world, code, plan_code)
    world.clock.set(start + SPAN)
    for batch in batches:
        raw = [
            {
                **{k: v for k, v in event.items() if k not in ("offset", "org")},
                "org": code + event["org"],
                "time": (start + timedelta(seconds=event["offset"])).isoformat(),
            }
            for event in batch
        ]
        with world.billing() as b:
            outcome = ingest_batch(b, raw)
        assert outcome.refused == ()
    with world.billing() as b:
        owner = organization_by_code(b, code)
        subscription = subscription_of(b, owner, lock=False)
        assert subscription is not None
        catalog, plan = plan_of(b, subscription)
        assert plan.answered_only is (plan_code == "answered")
        for meter in catalog.meters.values():
            for period in periods:
                for answered_only in {plan.answered_only, False}:
                    kept = counters.used(b, owner.id, meter, period.start, answered_only)
                    recounted = recount_usage(b, owner, meter, period, answered_only)
                    assert kept == recounted, (meter.code, period, answered_only)
