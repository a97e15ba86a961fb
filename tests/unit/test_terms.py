"""The platform's billing terms (the `settings` of SCENARIOS.md): defaults (TRI-1, SUB-4,
SUB-8), every setting read from a document, and every bad setting refused with its path."""

import copy
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency
from tabkeeper.domain.periods import ProrationMode
from tabkeeper.domain.terms import (
    BillingTerms,
    PlanChangeTerms,
    Timing,
    TrialTerms,
    build_terms,
    check_terms_with_catalog,
)

USD = Currency.of("USD")
IMMEDIATELY, PERIOD_END, DATE = Timing.IMMEDIATELY, Timing.PERIOD_END, Timing.DATE

# Every setting, none at its default.
FULL: dict[str, Any] = {
    "currency": "JPY",
    "proration": "day",
    "trial": {"days": 30, "sessions": 100, "plan": "free"},
    "grace_days": 14,
    "payment_retry_days": [2, 4, 8, 13],
    "invoice_prefix": "ACME-2026",
    "plan_changes": {
        "upgrade": ["period_end"],
        "downgrade": ["date", "period_end"],
        "downgrade_approval": True,
    },
}


# -- defaults ---------------------------------------------------------------------------


def test_no_settings_means_every_default() -> None:
    """SCENARIOS.md: settings are all optional; None, {} and BillingTerms() agree."""
    assert build_terms(None) == build_terms({}) == BillingTerms()


def test_trial_defaults_14_days_50_sessions_tri_1() -> None:
    """TRI-1: a new organization starts on a trial of 14 days and 50 sessions, on the
    catalog plan `trial`."""
    terms = build_terms(None)
    assert terms.trial == TrialTerms(days=14, sessions=50, plan="trial")


def test_grace_defaults_7_days_with_retries_sub_8() -> None:
    """SUB-8: a failed payment starts a grace period of 7 days by default, with payment
    retried 1, 3 and 5 days after the failure."""
    terms = build_terms({})
    assert terms.grace_days == 7
    assert terms.payment_retry_days == (1, 3, 5)


def test_other_defaults() -> None:
    """SCENARIOS.md: USD, proration by the second, invoice numbers prefixed INV."""
    terms = build_terms({})
    assert terms.currency == USD
    assert terms.proration is ProrationMode.SECOND
    assert terms.invoice_prefix == "INV"


def test_plan_change_defaults_sub_4() -> None:
    """SUB-4: members may choose immediately, at period end or on a date; an upgrade
    defaults to immediately, a downgrade to period end; no approval is needed."""
    changes = build_terms({}).plan_changes
    assert changes == PlanChangeTerms(
        upgrade=(IMMEDIATELY, PERIOD_END, DATE),
        downgrade=(PERIOD_END, IMMEDIATELY, DATE),
        downgrade_approval=False,
    )
    assert all(isinstance(timing, Timing) for timing in changes.upgrade + changes.downgrade)


# -- reading every setting ----------------------------------------------------------------


def test_every_setting_is_read() -> None:
    """TRI-1, SUB-4, SUB-8: each setting of the document lands in the terms."""
    assert build_terms(copy.deepcopy(FULL)) == BillingTerms(
        currency=Currency("JPY", 0),
        proration=ProrationMode.DAY,
        trial=TrialTerms(days=30, sessions=100, plan="free"),
        grace_days=14,
        payment_retry_days=(2, 4, 8, 13),
        invoice_prefix="ACME-2026",
        plan_changes=PlanChangeTerms(
            upgrade=(PERIOD_END,), downgrade=(DATE, PERIOD_END), downgrade_approval=True
        ),
    )


def test_reading_leaves_the_document_unchanged() -> None:
    document = copy.deepcopy(FULL)
    build_terms(document)
    assert document == FULL


def test_trial_null_means_no_trial_tri_1() -> None:
    """TRI-1 is configurable: `trial: null` means new organizations start with nothing."""
    assert build_terms({"trial": None}).trial is None


@pytest.mark.parametrize(
    ("trial", "expected"),
    [
        ({}, TrialTerms(14, 50, "trial")),
        ({"days": 7}, TrialTerms(7, 50, "trial")),
        ({"sessions": 10}, TrialTerms(14, 10, "trial")),
        ({"plan": "free"}, TrialTerms(14, 50, "free")),
        ({"days": 1, "sessions": 1}, TrialTerms(1, 1, "trial")),
    ],
)
def test_trial_settings_each_default_alone_tri_1(
    trial: dict[str, Any], expected: TrialTerms
) -> None:
    """TRI-1: trial days and sessions are configurable, each defaulting on its own."""
    assert build_terms({"trial": trial}).trial == expected


@pytest.mark.parametrize(("currency", "exponent"), [("USD", 2), ("JPY", 0), ("KWD", 3), ("EUR", 2)])
def test_currency_and_its_exponent(currency: str, exponent: int) -> None:
    assert build_terms({"currency": currency}).currency == Currency(currency, exponent)


@pytest.mark.parametrize("mode", list(ProrationMode))
def test_proration_modes(mode: ProrationMode) -> None:
    assert build_terms({"proration": mode.value}).proration is mode


@pytest.mark.parametrize(
    ("settings", "field", "expected"),
    [
        ({"grace_days": 0}, "grace_days", 0),
        ({"payment_retry_days": []}, "payment_retry_days", ()),
        ({"payment_retry_days": [7]}, "payment_retry_days", (7,)),
        ({"invoice_prefix": "A"}, "invoice_prefix", "A"),
        ({"invoice_prefix": "ABCDEFGHIJ12"}, "invoice_prefix", "ABCDEFGHIJ12"),
        ({"invoice_prefix": "2026-"}, "invoice_prefix", "2026-"),
    ],
)
def test_edge_values_accepted_sub_8(settings: dict[str, Any], field: str, expected: Any) -> None:
    """SUB-8: the grace period may be 0 days, and payment may be retried never or once."""
    assert getattr(build_terms(settings), field) == expected


def test_plan_changes_default_each_list_alone_sub_4() -> None:
    """SUB-4: restricting downgrades alone keeps the default upgrade timings."""
    changes = build_terms({"plan_changes": {"downgrade": ["period_end"]}}).plan_changes
    assert changes.upgrade == (IMMEDIATELY, PERIOD_END, DATE)
    assert changes.downgrade == (PERIOD_END,)
    assert changes.downgrade_approval is False


def test_settings_at_another_path() -> None:
    with pytest.raises(InvalidConfig, match=r"^platform\.grace_days: must be at least 0, got -1$"):
        build_terms({"grace_days": -1}, "platform")


# -- timings a member may choose (SUB-4) -----------------------------------------------------


RESTRICTED = build_terms(
    {"plan_changes": {"upgrade": ["immediately"], "downgrade": ["period_end", "date"]}}
)


@pytest.mark.parametrize(
    ("terms", "is_upgrade", "default", "allowed", "refused"),
    [
        (BillingTerms(), True, IMMEDIATELY, {IMMEDIATELY, PERIOD_END, DATE}, set()),
        (BillingTerms(), False, PERIOD_END, {IMMEDIATELY, PERIOD_END, DATE}, set()),
        (RESTRICTED, True, IMMEDIATELY, {IMMEDIATELY}, {PERIOD_END, DATE}),
        (RESTRICTED, False, PERIOD_END, {PERIOD_END, DATE}, {IMMEDIATELY}),
    ],
    ids=["default-upgrade", "default-downgrade", "restricted-upgrade", "restricted-downgrade"],
)
def test_default_and_allowed_timings_sub_4(
    terms: BillingTerms,
    is_upgrade: bool,
    default: Timing,
    allowed: set[Timing],
    refused: set[Timing],
) -> None:
    """SUB-4: the three timings, the platform's restrictions (e.g. downgrades never
    immediately), and the first allowed timing as the default when `when` is left out."""
    assert terms.default_timing(is_upgrade) is default
    assert {timing for timing in Timing if terms.allows(is_upgrade, timing)} == allowed
    assert not any(terms.allows(is_upgrade, timing) for timing in refused)
    assert terms.plan_changes.timings(is_upgrade)[0] is default


def test_downgrade_approval_sub_4() -> None:
    """SUB-4: the platform can require approval for downgrades."""
    terms = build_terms({"plan_changes": {"downgrade_approval": True}})
    assert terms.plan_changes.downgrade_approval is True


# -- bad settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("USD", "settings: expected a mapping of names to values"),
        (
            {"grace": 7},
            "settings.grace: unknown field; expected one of billing, billing_tab, currency, "
            "grace_days, invoice_prefix, payment_retry_days, plan_changes, proration, "
            "suspension_days, taxes, trial",
        ),
        (
            {"currency": "usd"},
            "settings.currency: unknown currency 'usd': expected an ISO 4217 code",
        ),
        (
            {"currency": "XYZ"},
            "settings.currency: unknown currency 'XYZ': expected an ISO 4217 code",
        ),
        ({"currency": 840}, "settings.currency: expected an ISO 4217 code such as USD, got 840"),
        (
            {"proration": "hour"},
            "settings.proration: unknown proration mode 'hour'; expected second, day or none",
        ),
        (
            {"proration": None},
            "settings.proration: expected a proration mode (second, day or none), got None",
        ),
        ({"trial": {"days": 0}}, "settings.trial.days: must be at least 1, got 0"),
        ({"trial": {"days": -3}}, "settings.trial.days: must be at least 1, got -3"),
        ({"trial": {"sessions": 0}}, "settings.trial.sessions: must be at least 1, got 0"),
        ({"trial": {"days": "14"}}, "settings.trial.days: expected a whole number, got '14'"),
        ({"trial": {"days": 1.5}}, "settings.trial.days: expected a whole number, got 1.5"),
        ({"trial": {"days": True}}, "settings.trial.days: expected a whole number, got True"),
        (
            {"trial": {"plan": "Free Trial"}},
            "settings.trial.plan: 'Free Trial' is not a valid name (lower-case letters, "
            "digits, _ - .)",
        ),
        (
            {"trial": {"days": 14, "months": 1}},
            "settings.trial.months: unknown field; expected one of days, plan, sessions",
        ),
        ({"trial": 14}, "settings.trial: expected a mapping of names to values"),
        ({"grace_days": -1}, "settings.grace_days: must be at least 0, got -1"),
        ({"grace_days": "7"}, "settings.grace_days: expected a whole number, got '7'"),
        ({"grace_days": None}, "settings.grace_days: expected a whole number, got None"),
        (
            {"payment_retry_days": [1, 3, 3]},
            "settings.payment_retry_days[2]: days must be strictly increasing; 3 is not after 3",
        ),
        (
            {"payment_retry_days": [5, 3, 1]},
            "settings.payment_retry_days[1]: days must be strictly increasing; 3 is not after 5",
        ),
        (
            {"payment_retry_days": [0, 1]},
            "settings.payment_retry_days[0]: must be at least 1, got 0",
        ),
        (
            {"payment_retry_days": [-1]},
            "settings.payment_retry_days[0]: must be at least 1, got -1",
        ),
        (
            {"payment_retry_days": [1, "3"]},
            "settings.payment_retry_days[1]: expected a whole number, got '3'",
        ),
        ({"payment_retry_days": 3}, "settings.payment_retry_days: expected a list, got 3"),
        (
            {"invoice_prefix": "inv"},
            "settings.invoice_prefix: 'inv' is not a valid prefix; use 1 to 12 characters "
            "of A-Z, 0-9 and '-'",
        ),
        (
            {"invoice_prefix": ""},
            "settings.invoice_prefix: '' is not a valid prefix; use 1 to 12 characters "
            "of A-Z, 0-9 and '-'",
        ),
        (
            {"invoice_prefix": "ABCDEFGHIJKLM"},
            "settings.invoice_prefix: 'ABCDEFGHIJKLM' is not a valid prefix; use 1 to 12 "
            "characters of A-Z, 0-9 and '-'",
        ),
        (
            {"invoice_prefix": "INV_"},
            "settings.invoice_prefix: 'INV_' is not a valid prefix; use 1 to 12 characters "
            "of A-Z, 0-9 and '-'",
        ),
        ({"invoice_prefix": 2026}, "settings.invoice_prefix: expected a text, got 2026"),
        (
            {"plan_changes": {"upgrade": []}},
            "settings.plan_changes.upgrade: needs at least one timing",
        ),
        (
            {"plan_changes": {"downgrade": []}},
            "settings.plan_changes.downgrade: needs at least one timing",
        ),
        (
            {"plan_changes": {"upgrade": ["immediately", "date", "immediately"]}},
            "settings.plan_changes.upgrade[2]: 'immediately' is listed twice",
        ),
        (
            {"plan_changes": {"downgrade": ["period_end", "period_end"]}},
            "settings.plan_changes.downgrade[1]: 'period_end' is listed twice",
        ),
        (
            {"plan_changes": {"upgrade": ["now"]}},
            "settings.plan_changes.upgrade[0]: unknown timing 'now'; expected one of date, "
            "immediately, period_end",
        ),
        (
            {"plan_changes": {"upgrade": "immediately"}},
            "settings.plan_changes.upgrade: expected a list, got 'immediately'",
        ),
        (
            {"plan_changes": {"downgrade_approval": "yes"}},
            "settings.plan_changes.downgrade_approval: expected true or false, got 'yes'",
        ),
        (
            {"plan_changes": {"downgrades": ["period_end"]}},
            "settings.plan_changes.downgrades: unknown field; expected one of downgrade, "
            "downgrade_approval, upgrade",
        ),
        ({"plan_changes": None}, "settings.plan_changes: expected a mapping of names to values"),
    ],
)
def test_bad_setting_names_its_path(settings: object, message: str) -> None:
    """Every bad setting gives one InvalidConfig naming its path. Tried: a settings that is
    not a mapping; an unknown key; currencies in lower case, unknown, or a number; an
    unknown or null proration; trial days 0 or negative, sessions 0, days as text, a float
    or a bool, a plan that is not a name, an unknown trial key, a trial that is a number;
    negative, textual or null grace; retry days repeated, decreasing, 0, negative, textual
    or not a list; invoice prefixes in lower case, empty, 13 long, with '_', a number;
    empty upgrade and downgrade lists, repeated timings, an unknown timing, a timing that
    is not a list, approval that is not a bool, an unknown plan_changes key, a null
    plan_changes."""
    with pytest.raises(InvalidConfig) as raised:
        build_terms(settings)
    assert str(raised.value) == message
    assert raised.value.path == message.split(": ", 1)[0]
    assert isinstance(raised.value, InvalidInput)


# -- values check themselves ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrialTerms(days=0), "days: must be at least 1, got 0"),
        (lambda: TrialTerms(sessions=0), "sessions: must be at least 1, got 0"),
        (lambda: TrialTerms(plan="Trial"), "plan: 'Trial' is not a valid name"),
        (lambda: PlanChangeTerms(upgrade=()), "upgrade: needs at least one timing"),
        (
            lambda: PlanChangeTerms(upgrade=["immediately"]),  # type: ignore[arg-type]
            "upgrade: expected a tuple of timings, got ['immediately']",
        ),
        (
            lambda: PlanChangeTerms(downgrade=("period_end",)),  # type: ignore[arg-type]
            "downgrade[0]: expected a Timing, got 'period_end'",
        ),
        (
            lambda: PlanChangeTerms(downgrade=(DATE, DATE)),
            "downgrade[1]: 'date' is listed twice",
        ),
        (
            lambda: PlanChangeTerms(downgrade_approval=1),  # type: ignore[arg-type]
            "downgrade_approval: expected true or false, got 1",
        ),
        (
            lambda: BillingTerms(currency="USD"),  # type: ignore[arg-type]
            "currency: expected a Currency, got 'USD'",
        ),
        (
            lambda: BillingTerms(proration="second"),  # type: ignore[arg-type]
            "proration: expected a ProrationMode, got 'second'",
        ),
        (
            lambda: BillingTerms(trial={"days": 14}),  # type: ignore[arg-type]
            "trial: expected TrialTerms or None, got {'days': 14}",
        ),
        (lambda: BillingTerms(grace_days=-1), "grace_days: must be at least 0, got -1"),
        (
            lambda: BillingTerms(payment_retry_days=[1, 3]),  # type: ignore[arg-type]
            "payment_retry_days: expected a tuple of whole numbers, got [1, 3]",
        ),
        (
            lambda: BillingTerms(payment_retry_days=(2, 1)),
            "payment_retry_days[1]: days must be strictly increasing; 1 is not after 2",
        ),
        (
            lambda: BillingTerms(invoice_prefix=None),  # type: ignore[arg-type]
            "invoice_prefix: None is not a valid prefix",
        ),
        (
            lambda: BillingTerms(plan_changes=None),  # type: ignore[arg-type]
            "plan_changes: expected PlanChangeTerms, got None",
        ),
    ],
)
def test_terms_made_in_code_check_themselves(make: Any, message: str) -> None:
    """Terms built in code are as valid as terms read from a file: each value refuses what
    build_terms refuses, naming the field."""
    with pytest.raises(InvalidConfig) as raised:
        make()
    assert str(raised.value).startswith(message)


def test_terms_are_frozen() -> None:
    terms = BillingTerms()
    with pytest.raises(FrozenInstanceError):
        terms.grace_days = 3  # type: ignore[misc]
    assert terms.trial is not None
    with pytest.raises(FrozenInstanceError):
        terms.trial.days = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        terms.plan_changes.upgrade = ()  # type: ignore[misc]


# -- terms and the catalog ------------------------------------------------------------------

CATALOG = build_catalog(
    {
        "plans": {
            "trial": {"name": "Free trial", "price": "0"},
            "starter": {"name": "Starter", "price": "49.00"},
        }
    },
    USD,
    "catalog",
)


@pytest.mark.parametrize(
    "settings",
    [{}, {"trial": {"plan": "starter"}}, {"trial": None}],
    ids=["default", "starter", "no-trial"],
)
def test_trial_plan_in_the_catalog_tri_1(settings: dict[str, Any]) -> None:
    """TRI-1: the trial runs on a plan of the catalog; with no trial nothing is needed."""
    check_terms_with_catalog(build_terms(settings), CATALOG)


@pytest.mark.parametrize(
    ("settings", "path", "message"),
    [
        ({"trial": {"plan": "free"}}, "settings", "settings.trial.plan: unknown plan 'free'"),
        ({"trial": {"plan": "gold"}}, "platform", "platform.trial.plan: unknown plan 'gold'"),
    ],
)
def test_trial_plan_missing_from_the_catalog_tri_1(
    settings: dict[str, Any], path: str, message: str
) -> None:
    """TRI-1: a trial plan the catalog lacks is refused, naming where it is set."""
    with pytest.raises(InvalidConfig) as raised:
        check_terms_with_catalog(build_terms(settings), CATALOG, path)
    assert str(raised.value) == message


def test_default_trial_needs_a_trial_plan_tri_1() -> None:
    """TRI-1: leaving settings out still means a trial on plan `trial`, which the catalog
    must then have."""
    catalog = build_catalog({"plans": {"starter": {"name": "S", "price": "1"}}}, USD)
    with pytest.raises(InvalidConfig, match=r"^settings\.trial\.plan: unknown plan 'trial'$"):
        check_terms_with_catalog(build_terms(None), catalog)


# -- properties --------------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=1, max_value=400), max_size=8, unique=True))
def test_increasing_retry_days_are_kept(days: list[int]) -> None:
    """Property: any strictly increasing list of days >= 1 is accepted and kept as given
    (SUB-8), in order."""
    days.sort()
    assert build_terms({"payment_retry_days": days}).payment_retry_days == tuple(days)


@given(st.lists(st.integers(min_value=1, max_value=30), min_size=2, max_size=8))
def test_retry_days_not_increasing_are_refused_at_the_first_offender(days: list[int]) -> None:
    """Property: a list of retry days that is not strictly increasing is refused, naming
    the first day that is not after the one before it."""
    first = next((i for i in range(1, len(days)) if days[i] <= days[i - 1]), None)
    if first is None:
        assert build_terms({"payment_retry_days": days}).payment_retry_days == tuple(days)
        return
    with pytest.raises(InvalidConfig) as raised:
        build_terms({"payment_retry_days": days})
    assert raised.value.path == f"settings.payment_retry_days[{first}]"


@given(st.lists(st.sampled_from(list(Timing)), min_size=1, max_size=3, unique=True), st.booleans())
def test_first_timing_is_the_default_and_only_listed_ones_are_allowed(
    timings: list[Timing], is_upgrade: bool
) -> None:
    """Property: for any non-empty list of distinct timings (SUB-4), the first is the
    default and exactly the listed ones are allowed."""
    key = "upgrade" if is_upgrade else "downgrade"
    terms = build_terms({"plan_changes": {key: [timing.value for timing in timings]}})
    assert terms.default_timing(is_upgrade) is timings[0]
    for timing in Timing:
        assert terms.allows(is_upgrade, timing) == (timing in timings)


@given(st.text(alphabet="ABCXYZ0189-abc_ .", max_size=14))
def test_invoice_prefix_accepted_exactly_when_valid(prefix: str) -> None:
    """Property: an invoice prefix is accepted exactly when it is 1 to 12 characters of
    A-Z, 0-9 and '-', and is then kept as written."""
    valid = 1 <= len(prefix) <= 12 and all(c in "ABCXYZ0189-" for c in prefix)
    if valid:
        assert build_terms({"invoice_prefix": prefix}).invoice_prefix == prefix
    else:
        with pytest.raises(InvalidConfig, match=r"^settings\.invoice_prefix: "):
            build_terms({"invoice_prefix": prefix})
