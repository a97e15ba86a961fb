"""Catalog parsing of channels (CAT-7) and included-credit rollover (CRD-8): what is
accepted, and each bad shape refused with the exact path of the mistake."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tabkeeper.domain.catalog import Resource, build_catalog
from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.money import Currency

USD = Currency.of("USD")


def _catalog(**plans: dict[str, Any]) -> dict[str, Any]:
    return {
        "plans": {code: {"name": code.title(), "price": "10.00", **p} for code, p in plans.items()}
    }


def test_cat7_plans_list_channels_with_a_limit() -> None:
    """CAT-7: a plan's channels in file order, its limit; the catalog knows every channel
    and the lowest-ranked plan that has each."""
    catalog = build_catalog(
        _catalog(
            basic={"channels": ["webchat"], "limits": {"channels": 1}, "rank": 1},
            pro={"channels": ["webchat", "whatsapp", "slack"], "limits": {"channels": 2},
                 "rank": 2},
            plus={"channels": ["slack", "whatsapp"], "rank": 3},
            bare={"rank": 0},
        ),
        USD,
    )  # fmt: skip
    pro = catalog.plans["pro"]
    assert pro.channels == ("webchat", "whatsapp", "slack")
    assert pro.limit(Resource.CHANNELS) == 2
    assert catalog.plans["plus"].limit(Resource.CHANNELS) is None
    assert catalog.plans["bare"].channels == ()
    assert catalog.channels() == {"webchat", "whatsapp", "slack"}
    lowest = catalog.lowest_plan_with_channel("whatsapp")
    assert lowest is not None and lowest.code == "pro"
    assert catalog.lowest_plan_with_channel("teams") is None


def test_crd8_rollover_max_is_parsed() -> None:
    catalog = build_catalog(
        _catalog(keeper={"credits": {"amount": 100, "rollover": {"max": 500}}}), USD
    )
    credits = catalog.plans["keeper"].credits
    assert credits is not None and credits.rollover_max == 500
    plain = build_catalog(_catalog(keeper={"credits": {"amount": 100}}), USD)
    assert plain.plans["keeper"].credits is not None
    assert plain.plans["keeper"].credits.rollover_max is None


BAD = [
    pytest.param(
        {"channels": ["webchat"], "limits": {"channels": 2}},
        "plans.p.limits.channels: 2 is more than the 1 channel the plan lists in channels",
        id="CAT-7-limit-above-the-channels-listed",
    ),
    pytest.param(
        {"limits": {"channels": 1}},
        "plans.p.limits.channels: 1 is more than the 0 channels the plan lists in channels",
        id="CAT-7-limit-without-channels",
    ),
    pytest.param(
        {"channels": ["webchat", "webchat"]},
        "plans.p.channels[1]: 'webchat' is listed twice",
        id="CAT-7-channel-twice",
    ),
    pytest.param(
        {"channels": ["Web Chat"]},
        "plans.p.channels[0]: 'Web Chat' is not a valid name (lower-case letters, digits, _ - .)",
        id="CAT-7-bad-channel-name",
    ),
    pytest.param(
        {"channels": "webchat"},
        "plans.p.channels: expected a list of names, got 'webchat'",
        id="CAT-7-channels-not-a-list",
    ),
    pytest.param(
        {"channels": ["webchat"], "limits": {"channels": -1}},
        "plans.p.limits.channels: must be at least 0, got -1",
        id="CAT-7-negative-limit",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {"max": -5}}},
        "plans.p.credits.rollover.max: must be at least 1, got -5",
        id="CRD-8-rollover-max-negative",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {"max": 0}}},
        "plans.p.credits.rollover.max: must be at least 1, got 0",
        id="CRD-8-rollover-max-zero",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {"max": 2.5}}},
        "plans.p.credits.rollover.max: expected a whole number, got 2.5",
        id="CRD-8-rollover-max-not-whole",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {"max": "50"}}},
        "plans.p.credits.rollover.max: expected a whole number, got '50'",
        id="CRD-8-rollover-max-text",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {}}},
        "plans.p.credits.rollover.max: is required",
        id="CRD-8-rollover-without-max",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": {"max": 5, "months": 2}}},
        "plans.p.credits.rollover.months: unknown field; expected one of max",
        id="CRD-8-rollover-unknown-key",
    ),
    pytest.param(
        {"credits": {"amount": 100, "rollover": 50}},
        "plans.p.credits.rollover: expected a mapping of names to values",
        id="CRD-8-rollover-not-a-mapping",
    ),
    pytest.param(
        {"credits": {"rollover": {"max": 50}}},
        "plans.p.credits.amount: is required",
        id="CRD-8-rollover-without-included-credits",
    ),
    pytest.param(
        {"credits": {"amount": 100, "expires": "never", "rollover": {"max": 50}}},
        "plans.p.credits.rollover: only included credits that expire at period_end can roll over",
        id="CRD-8-rollover-of-credits-that-never-expire",
    ),
]


@pytest.mark.parametrize(("plan", "problem"), BAD)
def test_bad_channels_and_rollover_name_the_path(plan: dict[str, Any], problem: str) -> None:
    """CAT-7, CRD-8: each mistake is refused naming its path (at import: nothing stored)."""
    with pytest.raises(InvalidConfig) as error:
        build_catalog(_catalog(p=plan), USD)
    assert re.sub(r"^catalog\.", "", str(error.value.message)) == problem
