"""CAT-8: an add-on has a price per interval (month, year or both), is sold with plans of
an interval it has a price for, billed at that interval's price, never another's; a catalog
that offers an add-on with a plan of an interval it has no price for is refused, naming the
path. SUB-14's lines (an interval change carrying the add-ons) are in test_invoicing.py and
tests/scenarios/interval-change-with-addons.yaml."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.errors import InvalidConfig, Refused
from tabkeeper.domain.invoicing import addon_line, addon_proration_line, addon_unused_credit_line
from tabkeeper.domain.money import Currency, Money
from tabkeeper.domain.periods import Interval, Period, ProrationMode
from tabkeeper.domain.slots import interval_total

USD = Currency.of("USD")
JPY = Currency.of("JPY")
MONTH, YEAR = Interval.MONTH, Interval.YEAR


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


PLANS: dict[str, Any] = {
    "starter": {"name": "Starter", "price": "20.00", "interval": "month", "rank": 1},
    "pro_yearly": {"name": "Pro yearly", "price": "250.00", "interval": "year", "rank": 2},
}


def _catalog(addon: dict[str, Any], plans: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"plans": plans or PLANS, "addons": {"extra_agents": addon}}


def _agent(price: object, **more: object) -> dict[str, Any]:
    return {"name": "Extra agents", "price": price, "adds": {"agents": 1}, **more}


# -- good catalogs ---------------------------------------------------------------------


def test_cat8_price_per_interval_month_and_year() -> None:
    """CAT-8: `price: {month, year}` gives one price per interval, offered with both."""
    catalog = build_catalog(_catalog(_agent({"year": "100.00", "month": "10.00"})), USD)
    addon = catalog.addon("extra_agents")
    assert dict(addon.prices) == {MONTH: Money(1000, USD), YEAR: Money(10000, USD)}
    assert list(addon.prices) == [MONTH, YEAR]  # in the order of the intervals
    assert addon.price_for(MONTH) == Money(1000, USD)
    assert addon.price_for(YEAR) == Money(10000, USD)


def test_cat8_plain_price_stays_the_monthly_price() -> None:
    """CAT-8, compatibility: a plain string is the monthly price, as catalogs before CAT-8
    wrote it; offered only with monthly plans it is valid."""
    monthly = {"starter": PLANS["starter"]}
    catalog = build_catalog(_catalog(_agent("10.00"), monthly), USD)
    addon = catalog.addon("extra_agents")
    assert dict(addon.prices) == {MONTH: Money(1000, USD)}
    assert not addon.has_price_for(YEAR)


def test_cat8_plain_price_with_interval_year_is_the_yearly_price() -> None:
    """CAT-8, compatibility: `price` with `interval: year` is the yearly price alone."""
    catalog = build_catalog(
        _catalog(_agent("50.00", interval="year", requires_plans=["pro_yearly"])), USD
    )
    assert dict(catalog.addon("extra_agents").prices) == {YEAR: Money(5000, USD)}


def test_cat8_yearly_only_addon_limited_to_yearly_plans() -> None:
    """CAT-8: a yearly-only add-on is valid when it requires yearly plans only."""
    catalog = build_catalog(_catalog(_agent({"year": "50.00"}, requires_plans=["pro_yearly"])), USD)
    addon = catalog.addon("extra_agents")
    assert addon.allowed_on("pro_yearly") and not addon.allowed_on("starter")


def test_cat8_price_for_another_interval_is_refused() -> None:
    """CAT-8: never billed at another interval's price: asking for a price the add-on
    does not have is refused (addon_interval_unpriced), naming the add-on."""
    catalog = build_catalog(_catalog(_agent({"year": "50.00"}, requires_plans=["pro_yearly"])), USD)
    addon = catalog.addon("extra_agents")
    with pytest.raises(Refused) as refused:
        addon.price_for(MONTH)
    assert refused.value.code == "addon_interval_unpriced"
    assert refused.value.message == (
        "Extra agents has no monthly price: it is sold with yearly plans only."
    )


def test_cat8_lines_and_totals_use_the_plans_interval_price() -> None:
    """CAT-8, INV-1, ADD-2: the advance line, the purchase proration and the interval
    total take the price of the plan's interval: 50.00 a year on a yearly plan, 5.00 a
    month on a monthly one (the issue: 50.00 every month)."""
    catalog = build_catalog(_catalog(_agent({"month": "5.00", "year": "50.00"})), USD)
    addon = catalog.addon("extra_agents")
    year = Period(utc(2026, 1, 1), utc(2027, 1, 1), 0)
    month = Period(utc(2026, 1, 1), utc(2026, 2, 1), 0)
    assert addon_line(addon, 2, year, YEAR).amount_minor == 10000
    assert addon_line(addon, 2, month, MONTH).amount_minor == 1000
    half = addon_proration_line(addon, 1, year, YEAR, utc(2026, 7, 2), ProrationMode.DAY)
    assert half is not None and half.amount_minor == 2507  # 5000 x 183/365
    yearly_plan, monthly_plan = catalog.plan("pro_yearly"), catalog.plan("starter")
    assert interval_total(catalog, yearly_plan, {"extra_agents": 2}) == Money(35000, USD)
    assert interval_total(catalog, monthly_plan, {"extra_agents": 2}) == Money(3000, USD)


# -- refused catalogs ------------------------------------------------------------------

REFUSED = [
    (
        "monthly price only, offered with a yearly plan (no requires_plans)",
        _catalog(_agent({"month": "10.00"})),
        USD,
        "addons.extra_agents.price",
        "no yearly price, but it is offered with plan pro_yearly (year)",
    ),
    (
        "plain (monthly) price, offered with a yearly plan",
        _catalog(_agent("10.00")),
        USD,
        "addons.extra_agents.price",
        "no yearly price, but it is offered with plan pro_yearly (year)",
    ),
    (
        "yearly price only, offered with a monthly plan (the issue's 12x overcharge)",
        _catalog(_agent({"year": "50.00"})),
        USD,
        "addons.extra_agents.price",
        "no monthly price, but it is offered with plan starter (month)",
    ),
    (
        "interval: year beside a plain price, offered with a monthly plan",
        _catalog(_agent("50.00", interval="year")),
        USD,
        "addons.extra_agents.price",
        "no monthly price, but it is offered with plan starter (month)",
    ),
    (
        "requires a yearly plan it has no yearly price for",
        _catalog(_agent({"month": "10.00"}, requires_plans=["starter", "pro_yearly"])),
        USD,
        "addons.extra_agents.price",
        "no yearly price, but it is offered with plan pro_yearly (year)",
    ),
    (
        "negative yearly price",
        _catalog(_agent({"month": "10.00", "year": "-100.00"})),
        USD,
        "addons.extra_agents.price.year",
        "must be at least 0, got -100.00",
    ),
    (
        "malformed monthly price",
        _catalog(_agent({"month": "ten", "year": "100.00"})),
        USD,
        "addons.extra_agents.price.month",
        "expected a decimal string such as \"0.10\", got 'ten'",
    ),
    (
        "a float price",
        _catalog(_agent({"month": 10.5, "year": "100.00"})),
        USD,
        "addons.extra_agents.price.month",
        'expected a decimal string such as "0.10", got 10.5',
    ),
    (
        "more decimals than the currency",
        _catalog(_agent({"month": "10", "year": "100.5"})),
        JPY,
        "addons.extra_agents.price.year",
        "100.5 has more decimals than JPY allows (0)",
    ),
    (
        "unknown interval key",
        _catalog(_agent({"month": "10.00", "week": "3.00"})),
        USD,
        "addons.extra_agents.price.week",
        "unknown interval 'week'; expected month or year",
    ),
    (
        "no interval price at all",
        _catalog(_agent({})),
        USD,
        "addons.extra_agents.price",
        'needs a price for month, year or both, e.g. {month: "10.00"}',
    ),
    (
        "interval beside a price per interval",
        _catalog(_agent({"month": "10.00", "year": "100.00"}, interval="year")),
        USD,
        "addons.extra_agents.interval",
        "give the price of each interval in price ({month: ..., year: ...}), not interval",
    ),
    (
        "price a list",
        _catalog(_agent(["10.00"])),
        USD,
        "addons.extra_agents.price",
        "expected a decimal string such as \"0.10\", got ['10.00']",
    ),
]


@pytest.mark.parametrize(
    ("document", "currency", "path", "problem"),
    [pytest.param(*row[1:], id=str(row[0])) for row in REFUSED],
)
def test_cat8_refused_catalog_names_the_path(
    document: dict[str, Any], currency: Currency, path: str, problem: str
) -> None:
    """CAT-8: each bad add-on price is refused with InvalidConfig naming its path. Tried:
    a missing yearly or monthly price for a plan the add-on is offered with (by default,
    by requires_plans, with the plain and the `interval: year` spellings), a negative,
    malformed, float or over-precise price, an unknown interval key, an empty mapping,
    `interval` beside a mapping, a list."""
    with pytest.raises(InvalidConfig) as error:
        build_catalog(document, currency)
    assert (error.value.path, error.value.problem) == (path, problem)
    assert error.value.code == "invalid_config"


def test_sub14_unused_credit_line_for_slots() -> None:
    """SUB-14: a change to another interval credits the slots' unused part at the old
    interval's price: 2 slots at 10.00 a month, Feb 15 of Feb 1 – Mar 1 (1/2 left):
    -1000; none in proration `none`; never at a price the add-on does not have."""
    catalog = build_catalog(_catalog(_agent({"month": "10.00", "year": "100.00"})), USD)
    addon = catalog.addon("extra_agents")
    february = Period(utc(2026, 2, 1), utc(2026, 3, 1), 1)
    credit = addon_unused_credit_line(
        addon, 2, february, MONTH, utc(2026, 2, 15), ProrationMode.SECOND
    )
    assert credit is not None
    assert (credit.kind.value, credit.amount_minor) == ("proration", -1000)
    assert credit.description == "Unused time on Extra agents × 2 (Feb 15 – Mar 1)"
    assert credit.details["unit_price"] == "10.00" and credit.details["fraction"] == "1/2"
    none = addon_unused_credit_line(addon, 2, february, MONTH, utc(2026, 2, 15), ProrationMode.NONE)
    assert none is None
    yearly_only = build_catalog(
        _catalog(_agent({"year": "50.00"}, requires_plans=["pro_yearly"])), USD
    ).addon("extra_agents")
    with pytest.raises(Refused, match="no monthly price"):
        addon_unused_credit_line(
            yearly_only, 1, february, MONTH, utc(2026, 2, 15), ProrationMode.SECOND
        )
