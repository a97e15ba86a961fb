"""Prepaid AI credits, the pure part (domain/ledger.py): which grants pay for a use, in
which order, expiry, costs and top-up prices (CRD-1, CRD-2, CRD-3, INV-1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.catalog import Catalog, build_catalog
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.ledger import (
    MAX_CREDITS,
    MAX_PRICE_MINOR,
    CreditsExhausted,
    Draw,
    Expiry,
    Grant,
    GrantKind,
    allocate,
    balance_of,
    cheapest_use,
    crossed_into_exhaustion,
    draw_order,
    expiries,
    next_expiry,
    require_priority,
    top_up_price,
    use_cost,
    whole_credits,
)
from tabkeeper.domain.money import Currency, Money

USD = Currency.of("USD")
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 15, tzinfo=UTC)
PLAN = {"basic": {"name": "Basic", "price": "30.00"}}


def catalog(features: dict[str, int] | None = None, credit_price: str | None = "0.01") -> Catalog:
    doc: dict[str, object] = {
        "plans": PLAN,
        "ai_features": {code: {"credits": c} for code, c in (features or {}).items()},
    }
    if credit_price is not None:
        doc["credit_price"] = credit_price
    return build_catalog(doc, USD)


def included(id: int, remaining: int, expires: datetime | None = FEB_1) -> Grant:
    return Grant(id, GrantKind.INCLUDED, max(remaining, 1), remaining, expires_at=expires)


def purchased(id: int, remaining: int, priority: int = 50) -> Grant:
    return Grant(id, GrantKind.PURCHASED, max(remaining, 1), remaining, priority)


# -- order ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "cost", "draws"),
    [
        # CRD-2: included first, even when the purchased grant is older
        ([purchased(1, 50), included(2, 100)], 30, [Draw(2, 30)]),
        # a use larger than the included remainder draws the rest from the purchased one
        ([purchased(1, 50), included(2, 40)], 50, [Draw(2, 40), Draw(1, 10)]),
        # then the lower priority number
        ([purchased(1, 5, priority=60), purchased(2, 5, priority=10)], 7, [Draw(2, 5), Draw(1, 2)]),
        # then the earlier expiry; a grant that never expires comes last
        (
            [
                Grant(1, GrantKind.ADJUSTMENT, 5, 5),
                Grant(2, GrantKind.ADJUSTMENT, 5, 5, expires_at=MAR_1),
                Grant(3, GrantKind.ADJUSTMENT, 5, 5, expires_at=FEB_1),
            ],
            12,
            [Draw(3, 5), Draw(2, 5), Draw(1, 2)],
        ),
        # then the older grant
        ([purchased(7, 3), purchased(4, 3)], 4, [Draw(4, 3), Draw(7, 1)]),
        # empty and expired grants pay nothing
        ([included(1, 0), included(2, 9, expires=NOW), purchased(3, 2)], 2, [Draw(3, 2)]),
        # exactly the balance
        ([included(1, 3), purchased(2, 2)], 5, [Draw(1, 3), Draw(2, 2)]),
    ],
)
def test_which_grants_pay_crd_2(grants: list[Grant], cost: int, draws: list[Draw]) -> None:
    """CRD-2: included credits first, then priority, earlier expiry, older grant."""
    assert allocate(grants, cost, NOW) == tuple(draws)


def test_a_use_the_balance_cannot_cover_is_refused_crd_3() -> None:
    """CRD-3: the live grants hold 4 (an expired grant's 9 do not count): a use of 5 is
    refused with credits_exhausted, saying cost and balance."""
    grants = [included(1, 9, expires=NOW), purchased(2, 4)]
    with pytest.raises(CreditsExhausted, match="costs 5 and the balance is 4") as raised:
        allocate(grants, 5, NOW)
    assert raised.value.code == "credits_exhausted"
    assert balance_of(grants, NOW) == 4


def test_draw_order_key() -> None:
    assert draw_order(included(3, 1)) < draw_order(purchased(1, 1, priority=0))
    assert draw_order(purchased(1, 1)) < draw_order(purchased(2, 1))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(GrantKind)),
            st.integers(1, 50),
            st.integers(0, 50),
            st.integers(0, 100),
            st.sampled_from([None, NOW, FEB_1, MAR_1]),
        ),
        max_size=8,
    ),
    st.integers(1, 200),
)
def test_allocation_is_exact_and_never_overdraws(
    specs: list[tuple[GrantKind, int, int, int, datetime | None]], cost: int
) -> None:
    """Property: a use is paid exactly, no grant gives more than it has left, only live
    grants pay, in draw order, and it is refused exactly when the balance is short."""
    grants = [
        Grant(i + 1, kind, amount, min(left, amount), priority, expires)
        for i, (kind, amount, left, priority, expires) in enumerate(specs)
    ]
    by_id = {g.id: g for g in grants}
    balance = balance_of(grants, NOW)
    if balance < cost:
        with pytest.raises(CreditsExhausted):
            allocate(grants, cost, NOW)
        return
    draws = allocate(grants, cost, NOW)
    assert sum(d.credits for d in draws) == cost
    assert all(0 < d.credits <= by_id[d.grant_id].remaining for d in draws)
    assert all(by_id[d.grant_id].live(NOW) for d in draws)
    keys = [draw_order(by_id[d.grant_id]) for d in draws]
    assert keys == sorted(keys)
    # every grant before the last one drawn is emptied
    assert all(d.credits == by_id[d.grant_id].remaining for d in draws[:-1])


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("top_up"), st.integers(1, 30)),
            st.tuples(st.just("use"), st.integers(1, 40)),
            st.tuples(st.just("renew"), st.integers(0, 40)),
            st.tuples(st.just("wait"), st.integers(1, 20)),
        ),
        max_size=30,
    )
)
def test_balance_is_the_sum_of_the_ledger(steps: list[tuple[str, int]]) -> None:
    """Property (CRD-2): after any sequence of top-ups, uses, expiries and renewals (each
    granting its included credits, expiring at the period's end), the balance equals the
    sum of the ledger's entries, no grant goes below zero, and a refused use changes
    nothing."""
    now = JAN_1
    grants: dict[int, Grant] = {}
    ledger: list[int] = []

    def expire_due() -> None:
        for due in expiries(grants.values(), now):
            assert due.at <= now
            old = grants[due.grant_id]
            grants[due.grant_id] = Grant(old.id, old.kind, old.amount, 0, old.priority,
                                         old.expires_at)  # fmt: skip
            ledger.append(-due.credits)

    def add(kind: GrantKind, credits: int, expires: datetime | None) -> None:
        grants[len(grants) + 1] = Grant(len(grants) + 1, kind, credits, credits, expires_at=expires)
        ledger.append(credits)

    for action, n in steps:
        if action == "wait":
            now += timedelta(days=n)
        elif action == "renew":
            now += timedelta(days=30)
            expire_due()
            if n:
                add(GrantKind.INCLUDED, n, now + timedelta(days=30))
        elif action == "top_up":
            add(GrantKind.PURCHASED, n, None)
        expire_due()
        if action == "use":
            before = dict(grants)
            try:
                draws = allocate(grants.values(), n, now)
            except CreditsExhausted:
                assert grants == before
                continue
            for draw in draws:
                old = grants[draw.grant_id]
                grants[draw.grant_id] = Grant(old.id, old.kind, old.amount,
                                              old.remaining - draw.credits, old.priority,
                                              old.expires_at)  # fmt: skip
            ledger.append(-n)
        assert balance_of(grants.values(), now) == sum(ledger)
        assert all(g.remaining >= 0 for g in grants.values())


# -- expiry -----------------------------------------------------------------------------------


def test_expiries_and_the_next_one_crd_2() -> None:
    """CRD-2: plan-included credits expire at the period's end (a deadline equal to now
    has passed), earliest first; purchased credits never expire."""
    grants = [
        included(1, 70, expires=FEB_1),
        included(2, 0, expires=JAN_1),
        Grant(3, GrantKind.ADJUSTMENT, 9, 9, expires_at=JAN_1 + timedelta(days=3)),
        purchased(4, 50),
        included(5, 100, expires=MAR_1),
    ]
    assert expiries(grants, FEB_1) == (
        Expiry(3, 9, JAN_1 + timedelta(days=3)),
        Expiry(1, 70, FEB_1),
    )
    assert expiries(grants, JAN_1) == ()
    assert next_expiry(grants) == JAN_1 + timedelta(days=3)
    assert next_expiry([purchased(1, 5), included(2, 0)]) is None


# -- quantities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [0, -1, 2.5, 1.0, "10", True, None, Decimal("2.5"), Decimal("NaN"), MAX_CREDITS + 1]
)
def test_credits_are_whole_numbers_from_one(bad: object) -> None:
    """CRD-1: zero, negative, fractional, text, true/false and huge credits are refused."""
    with pytest.raises(InvalidInput) as raised:
        whole_credits(bad, "credits")
    assert raised.value.code == "invalid_credits"
    assert "credits" in raised.value.message


def test_whole_credits_accepts() -> None:
    assert whole_credits(1, "credits") == 1
    assert whole_credits(Decimal("12"), "credits") == 12
    assert whole_credits(MAX_CREDITS, "credits") == MAX_CREDITS


@pytest.mark.parametrize("bad", [-1, 101, True, "5", 2.0])
def test_priority_is_0_to_100(bad: object) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        require_priority(bad)
    assert require_priority(0) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 1, "kind": "purchased", "amount": 5, "remaining": 6},
        {"id": 1, "kind": "purchased", "amount": 5, "remaining": -1},
        {"id": "1", "kind": "purchased", "amount": 5, "remaining": 5},
        {"id": 1, "kind": "purchased", "amount": True, "remaining": 0},
        {"id": 1, "kind": "purchased", "amount": 5, "remaining": 5, "priority": 101},
        {"id": 1, "kind": "gift", "amount": 5, "remaining": 5},
    ],
)
def test_grants_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises((InvalidInput, ValueError)):
        Grant(**bad)  # type: ignore[arg-type]


def test_a_naive_expiry_is_refused() -> None:
    with pytest.raises(InvalidInput):
        Grant(1, GrantKind.ADJUSTMENT, 5, 5, expires_at=datetime(2026, 1, 1))


# -- costs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "uses", "cost"), [("smart_reply", 1, 1), ("kb_answer", 1, 2), ("kb_answer", 30, 60)]
)
def test_use_cost_at_the_platform_rate_crd_1(feature: str, uses: int, cost: int) -> None:
    """CRD-1: AI features consume credits at rates the platform sets per feature."""
    assert use_cost(catalog({"smart_reply": 1, "kb_answer": 2}), feature, uses) == cost


@pytest.mark.parametrize(("feature", "uses"), [("poetry", 1), (None, 1), ("smart_reply", 0)])
def test_unknown_features_and_bad_uses_are_refused(feature: object, uses: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        use_cost(catalog({"smart_reply": 1}), feature, uses)
    assert raised.value.code in ("unknown_feature", "invalid_credits")


def test_unknown_feature_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="credit rates for: none"):
        use_cost(catalog(), "smart_reply")
    with pytest.raises(InvalidInput, match="kb_answer, smart_reply"):
        use_cost(catalog({"smart_reply": 1, "kb_answer": 2}), "x")


def test_exhaustion_is_below_the_cheapest_feature_crd_3() -> None:
    """CRD-3: the balance is exhausted when it no longer covers the cheapest feature."""
    assert cheapest_use(catalog({"a": 3, "b": 2})) == 2
    assert cheapest_use(catalog()) == 1
    assert crossed_into_exhaustion(2, 1, 2)
    assert crossed_into_exhaustion(1, 0, 1)
    assert not crossed_into_exhaustion(3, 2, 2)
    assert not crossed_into_exhaustion(1, 1, 2)


# -- top-up price ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credit_price", "credits", "price", "minor"),
    [
        ("0.01", 1000, None, 1000),
        ("0.015", 333, None, 500),  # 4.995 rounded once, half up
        ("0.004", 1, None, 0),  # 0.004 rounds to 0.00
        ("0.01", 400, Money(500, USD), 500),
        (None, 10, Money(0, USD), 0),
    ],
)
def test_top_up_price_inv_1(
    credit_price: str | None, credits: int, price: Money | None, minor: int
) -> None:
    """INV-1, CRD-1: credits × credit price rounded once, or the price given."""
    assert top_up_price(catalog(credit_price=credit_price), credits, price, USD) == Money(
        minor, USD
    )


@pytest.mark.parametrize(
    ("credit_price", "price", "code"),
    [
        (None, None, "price_required"),
        ("0.01", Money(-1, USD), "invalid_price"),
        ("0.01", Money(MAX_PRICE_MINOR + 1, USD), "invalid_price"),
        ("1000", None, "invalid_price"),
        ("0.01", Money(5, Currency.of("EUR")), "invalid_input"),
    ],
)
def test_top_up_price_refusals(credit_price: str | None, price: Money | None, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        top_up_price(catalog(credit_price=credit_price), 10_000_000, price, USD)
    assert raised.value.code == code
