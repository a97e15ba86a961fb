"""Bad requests are refused with a clear error and change nothing (house rule 8).

Tried here, each on SQLite and PostgreSQL: an unknown plan; a change to the current plan;
a custom date in the past; resume after the period ended; subscribe while subscribed; a
second trial; a declined card; a plan with too little capacity; a sales-led plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tabkeeper.domain.errors import InvalidInput, Refused, TabkeeperError
from tabkeeper.services import changes, subscriptions
from tabkeeper.services.context import Billing
from tabkeeper.services.organizations import create_agent, organization_by_code
from tests.integration.conftest import FEB_1, World, every_row, make_world


def _state(world: World) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(world.engine, leave_out=("alembic_version",))


def _refused(
    world: World, action: Callable[[Billing], object], error: type[TabkeeperError], code: str,
    message: str,
) -> None:  # fmt: skip
    before = _state(world)
    with pytest.raises(error, match=message) as raised, world.billing() as b:
        action(b)
    assert raised.value.code == code
    assert _state(world) == before


def _org(b: Billing) -> Any:
    return organization_by_code(b, "acme")


@pytest.fixture
def subscribed(world: World) -> World:
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.advance(timedelta(days=3))
    return world


def test_unknown_plan_is_refused(subscribed: World) -> None:
    """SUB-4: a change to a plan the catalog does not have."""
    _refused(
        subscribed, lambda b: changes.change_plan(b, _org(b), "gold", None),
        InvalidInput, "unknown_plan", "unknown plan 'gold'",
    )  # fmt: skip


def test_change_to_the_current_plan_is_refused(subscribed: World) -> None:
    """SUB-4: already on the plan."""
    _refused(
        subscribed, lambda b: changes.change_plan(b, _org(b), "basic", None),
        Refused, "same_plan", "already on Basic",
    )  # fmt: skip


def test_custom_date_in_the_past_is_refused(subscribed: World) -> None:
    """SUB-4: On custom date needs a date after now."""
    past = subscribed.clock.now() - timedelta(hours=1)
    _refused(
        subscribed, lambda b: changes.change_plan(b, _org(b), "pro", past),
        Refused, "date_in_past", "is not in the future",
    )  # fmt: skip


def test_resume_after_the_period_ended_is_refused(subscribed: World) -> None:
    """SUB-7: a cancellation can be undone only until the period ends."""
    with subscribed.billing() as b:
        subscriptions.cancel(b, _org(b))
    subscribed.clock.set(FEB_1 + timedelta(hours=1))
    subscribed.worker().tick()
    _refused(
        subscribed, lambda b: subscriptions.resume(b, _org(b)),
        Refused, "subscription_ended", "already ended",
    )  # fmt: skip


def test_subscribe_while_subscribed_is_refused(subscribed: World) -> None:
    """SUB-3: one subscription per organization; change the plan instead."""
    _refused(
        subscribed, lambda b: subscriptions.quote_subscription(b, _org(b), "pro", {}),
        Refused, "already_subscribed", "already subscribed",
    )  # fmt: skip


def test_a_second_trial_is_refused(engine: Any) -> None:
    """TRI-4: one trial per organization, ever, also after a paid plan ended."""
    world = make_world(engine, {"trial": {"days": 14, "sessions": 50, "plan": "trial"}})
    world.organization("acme")
    _refused(
        world, lambda b: subscriptions.start_trial(b, _org(b)),
        Refused, "trial_used", "once per organization",
    )  # fmt: skip


def test_too_little_capacity_is_refused_with_the_counts(subscribed: World) -> None:
    """SUB-6: Pro allows 3 agents; with 1 allowed on Basic, first move to Pro, add 3, then
    a downgrade to Basic must say how many to archive."""
    with subscribed.billing() as b:
        changes.change_plan(b, _org(b), "pro", "immediately")
    with subscribed.billing() as b:
        for agent in ("a1", "a2", "a3"):
            create_agent(b, _org(b), agent)
    _refused(
        subscribed, lambda b: changes.change_plan(b, _org(b), "basic", "immediately"),
        Refused, "capacity_in_use", "Basic allows 1 agent; archive or delete 2 agents first",
    )  # fmt: skip


def test_a_declined_card_starts_nothing(world: World) -> None:
    """SUB-3, PAY-1: the subscription starts only when the first payment succeeds."""
    world.organization("acme")
    for card in ("card_declined", "card_fails_later"):
        with pytest.raises(Refused, match="declined") as raised:
            world.subscribe("acme", "basic", card)
        assert raised.value.code == "card_declined"
    assert world.invoices() == 0
    with world.billing() as b:
        assert subscriptions.subscription_of(b, _org(b)) is None


def test_a_sub_account_cannot_change_the_shared_subscription(subscribed: World) -> None:
    """SUB-2: billing is at the organization level only: a sub-account shares the
    subscription and cannot change, cancel, resume or subscribe."""
    with subscribed.billing() as b:
        from tabkeeper.services.organizations import create_organization

        create_organization(b, "acme-eu", {"owner": "owner"}, parent="acme")
    for action in (
        lambda b: changes.change_plan(b, organization_by_code(b, "acme-eu"), "pro", None),
        lambda b: subscriptions.cancel(b, organization_by_code(b, "acme-eu")),
        lambda b: subscriptions.resume(b, organization_by_code(b, "acme-eu")),
        lambda b: subscriptions.quote_subscription(
            b, organization_by_code(b, "acme-eu"), "pro", {}
        ),
    ):
        _refused(subscribed, action, Refused, "sub_account", "organization level")
