"""Add-on slots, the pure rules (ADD-1..4, CAT-5, INV-1): quantities, slots now and from
the next billing date, plans an add-on requires, the interval total, and what a removal
would leave too little of."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import Catalog, Resource, build_catalog
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.slots import (
    MAX_SLOTS,
    SlotCount,
    capacity_shortfall,
    either,
    interval_total,
    require_allowed_on,
    shortfall_message,
    slot_quantity,
    sold_with,
)

USD = Currency.of("USD")
CATALOG: Catalog = build_catalog(
    {
        "plans": {
            "pro": {"name": "Pro", "price": "100.00", "limits": {"agents": 3}},
            "team": {"name": "Team", "price": "50.00"},
            "basic": {"name": "Basic", "price": "20.00"},
            "enterprise": {"name": "Enterprise", "price": "500.00"},
        },
        "addons": {
            "extra_agent": {"name": "Extra agent", "price": "10.00", "adds": {"agents": 1}},
            "extra_seat": {"name": "Extra seat", "price": "5.50", "adds": {"seats": 1}},
            "max": {"name": "Enterprise Max", "price": "200.00", "requires_plans": ["enterprise"]},
            "pair": {
                "name": "Team pack",
                "price": "1.00",
                "adds": {"seats": 2},
                "requires_plans": ["team", "enterprise", "pro"],
            },
        },
    },
    USD,
)


@pytest.mark.parametrize("quantity", [1, 2, 999, MAX_SLOTS])
def test_a_request_moves_1_to_1000_slots(quantity: int) -> None:
    """ADD-2, ADD-3: 1 to 1,000 slots a request."""
    assert slot_quantity(quantity) == quantity


@pytest.mark.parametrize("bad", [0, -1, MAX_SLOTS + 1, 2.0, "3", None, True])
def test_other_quantities_are_refused(bad: Any) -> None:
    """Bad input tried: 0 slots, more than 1,000, a negative, a float, a text, a flag."""
    with pytest.raises(InvalidInput, match="quantity: add or remove from 1 to 1,000") as error:
        slot_quantity(bad)
    assert error.value.code == "invalid_quantity"


def test_adding_raises_now_and_next_period() -> None:
    """ADD-2: added slots are in force at once and billed from the next period on."""
    assert SlotCount(3, 1).added(2, "Extra agent") == SlotCount(5, 3)
    assert SlotCount().added(MAX_SLOTS, "Extra agent") == SlotCount(MAX_SLOTS, MAX_SLOTS)


def test_removing_lowers_only_the_next_period() -> None:
    """ADD-3: removed slots stay in force until the next billing date."""
    assert SlotCount(5, 5).removed(2, "Extra agent") == SlotCount(5, 3)
    assert SlotCount(5, 3).removed(3, "Extra agent") == SlotCount(5, 0)


def test_no_more_than_1000_slots_of_one_addon() -> None:
    """Bad input tried: 996 + 5 slots; the refusal says how many more fit."""
    with pytest.raises(Refused, match="it has 996, so at most 4 more") as error:
        SlotCount(996, 996).added(5, "Extra agent")
    assert error.value.code == "too_many_slots"


@pytest.mark.parametrize(
    ("count", "quantity", "message"),
    [
        (SlotCount(3, 1), 2, "has 1 slot of Extra agent from the next billing date; 2 slots"),
        (SlotCount(2, 0), 1, "has 0 slots of Extra agent from the next billing date; 1 slot "),
        (SlotCount(), 1, "has 0 slots of Extra agent"),
    ],
)
def test_removing_more_than_owned_is_refused(count: SlotCount, quantity: int, message: str) -> None:
    """ADD-3. Bad input tried: removing more slots than are left from the next billing
    date (slots already removed do not count twice)."""
    with pytest.raises(Refused, match=message) as error:
        count.removed(quantity, "Extra agent")
    assert error.value.code == "not_enough_slots"


@pytest.mark.parametrize(
    ("now", "later", "message"),
    [
        (-1, 0, "slots now: expected a whole number >= 0"),
        (1, -1, "slots next period: expected a whole number >= 0"),
        (1, 2, r"slots next period \(2\) cannot be more than the slots now \(1\)"),
        (True, 0, "slots now"),
    ],
)
def test_a_slot_count_is_checked(now: Any, later: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SlotCount(now, later)


@pytest.mark.parametrize(
    ("names", "joined"),
    [([], ""), (["A"], "A"), (["A", "B"], "A or B"), (["A", "B", "C"], "A, B or C")],
)
def test_either(names: list[str], joined: str) -> None:
    assert either(names) == joined


def test_a_layered_addon_is_refused_on_another_plan() -> None:
    """CAT-5: "Enterprise Max" requires Enterprise: refused on Pro, naming the plan."""
    with pytest.raises(Refused) as error:
        require_allowed_on(CATALOG, CATALOG.addon("max"), CATALOG.plan("pro"))
    assert error.value.code == "addon_not_allowed"
    assert error.value.message == (
        "Enterprise Max is available on Enterprise only, not on Pro; upgrade to add it."
    )
    require_allowed_on(CATALOG, CATALOG.addon("max"), CATALOG.plan("enterprise"))
    require_allowed_on(CATALOG, CATALOG.addon("extra_agent"), CATALOG.plan("team"))


def test_the_refusal_names_every_plan_required() -> None:
    """CAT-5: an add-on for several plans names them all; a plan the catalog (version)
    no longer has is named by its code."""
    addon = CATALOG.addon("pair")
    with pytest.raises(Refused, match="available on Team, Enterprise or Pro only, not on Basic"):
        require_allowed_on(CATALOG, addon, CATALOG.plan("basic"))
    fewer = Catalog(USD, CATALOG.meters, {"basic": CATALOG.plan("basic")}, CATALOG.addons, {})
    with pytest.raises(Refused, match="available on team, enterprise or pro only, not on Basic"):
        require_allowed_on(fewer, addon, CATALOG.plan("basic"))


@pytest.mark.parametrize(
    ("slots", "minor"),
    [
        ({}, 10000),
        ({"extra_agent": 2}, 12000),
        ({"extra_agent": 2, "extra_seat": 3}, 13650),
        ({"extra_agent": 0, "gone": 5}, 10000),
    ],
)
def test_interval_total_is_plan_plus_slots(slots: dict[str, int], minor: int) -> None:
    """ADD-2, INV-1: the new monthly total is the plan plus each add-on's slots; a code the
    catalog lacks bills nothing, as at a renewal."""
    assert interval_total(CATALOG, CATALOG.plan("pro"), slots) == Money(minor, USD)


def test_interval_total_refuses_negative_slots() -> None:
    with pytest.raises(InvalidInput, match="slots of extra_agent"):
        interval_total(CATALOG, CATALOG.plan("pro"), {"extra_agent": -1})


def test_capacity_shortfall_counts_only_the_addons_resources() -> None:
    """ADD-3: what is over the capacity left, for the resources the add-on adds only;
    unlimited or uncounted resources are never over."""
    use = {Resource.AGENTS: 4, Resource.SEATS: 6, Resource.PHONE_NUMBERS: 9}
    limits: dict[Resource, int | None] = {
        Resource.AGENTS: 1,
        Resource.SEATS: 2,
        Resource.PHONE_NUMBERS: None,
    }
    assert capacity_shortfall(use, limits, [Resource.AGENTS]) == {Resource.AGENTS: 3}
    assert capacity_shortfall(use, limits, list(Resource)) == {
        Resource.AGENTS: 3,
        Resource.SEATS: 4,
    }
    assert capacity_shortfall(use, limits, [Resource.CHANNELS, Resource.PHONE_NUMBERS]) == {}
    assert capacity_shortfall({Resource.AGENTS: 1}, limits, [Resource.AGENTS]) == {}


@pytest.mark.parametrize(
    ("limits", "over", "message"),
    [
        (
            {Resource.AGENTS: 1},
            {Resource.AGENTS: 3},
            "From the next billing date Basic and its remaining slots allow 1 agent; "
            "archive or delete 3 agents first.",
        ),
        (
            {Resource.SEATS: 2},
            {Resource.SEATS: 1},
            "From the next billing date Basic and its remaining slots allow 2 seats; "
            "remove 1 seat first.",
        ),
        (
            {Resource.AGENTS: 0, Resource.SEATS: 3, Resource.PHONE_NUMBERS: 1},
            {Resource.AGENTS: 1, Resource.SEATS: 2, Resource.PHONE_NUMBERS: 2},
            "From the next billing date Basic and its remaining slots allow 0 agents, "
            "3 seats, 1 phone number; archive or delete 1 agent, remove 2 seats and "
            "release 2 phone numbers first.",
        ),
    ],
)
def test_shortfall_message_says_how_many_of_what(
    limits: dict[Resource, int | None], over: dict[Resource, int], message: str
) -> None:
    """ADD-3: refused below what is in use, saying how many to archive or delete first."""
    assert shortfall_message("Basic", limits, over) == message


def test_a_shortfall_message_needs_a_shortfall() -> None:
    with pytest.raises(InvalidInput, match="at least one resource"):
        shortfall_message("Basic", {}, {})


counts = st.integers(0, MAX_SLOTS).flatmap(lambda now: st.tuples(st.just(now), st.integers(0, now)))


@given(counts, st.integers(1, MAX_SLOTS))
def test_adding_keeps_next_period_within_now(count: tuple[int, int], quantity: int) -> None:
    """Property: adding slots either is refused or raises both counts by the quantity, and
    the next period never holds more slots than are in force now, nor more than 1,000."""
    before = SlotCount(*count)
    try:
        after = before.added(quantity, "Extra agent")
    except Refused:
        assert before.now + quantity > MAX_SLOTS
        return
    assert (after.now - before.now, after.next_period - before.next_period) == (quantity,) * 2
    assert after.next_period <= after.now <= MAX_SLOTS


@given(counts, st.integers(1, MAX_SLOTS))
def test_removing_never_touches_the_slots_in_force(count: tuple[int, int], quantity: int) -> None:
    """Property: a removal leaves the slots in force alone (ADD-3: no refund, effective at
    the next billing date) and never makes the next period negative."""
    before = SlotCount(*count)
    try:
        after = before.removed(quantity, "Extra agent")
    except Refused:
        assert quantity > before.next_period
        return
    assert after.now == before.now
    assert after.next_period == before.next_period - quantity >= 0


def test_add_4_seats_are_not_sold_to_a_plan_without_a_team() -> None:
    """ADD-4: a plan with 0 seats offers no team at all: its seat add-ons are not sold with
    it and the refusal says "Upgrade to use team"; with seats (or no seat limit) they are;
    an agent add-on is unaffected."""
    catalog = build_catalog(
        {
            "plans": {
                "solo": {"name": "Solo", "price": "10.00", "limits": {"seats": 0}},
                "duo": {"name": "Duo", "price": "20.00", "limits": {"seats": 1}},
            },
            "addons": {
                "extra_seat": {"name": "Extra seat", "price": "5.00", "adds": {"seats": 1}},
                "extra_agent": {"name": "Extra agent", "price": "5.00", "adds": {"agents": 1}},
            },
        },
        USD,
    )
    seat, agent = catalog.addons["extra_seat"], catalog.addons["extra_agent"]
    solo, duo = catalog.plans["solo"], catalog.plans["duo"]
    assert (sold_with(seat, solo), sold_with(seat, duo)) == (False, True)
    assert sold_with(agent, solo)
    with pytest.raises(
        Refused, match="Solo offers no team, so Extra seat cannot be added: Upgrade to use team."
    ):
        require_allowed_on(catalog, seat, solo)
    require_allowed_on(catalog, seat, duo)
    assert sold_with(seat, CATALOG.plans["basic"])  # no seat limit: seats may be bought
