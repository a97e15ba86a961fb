"""Unit pricing models (CAT-4): per-unit, package, graduated, volume; the registry."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.money import Currency
from tabkeeper.domain.pricing import (
    MODELS,
    Graduated,
    Package,
    PerUnit,
    Tier,
    Volume,
    model_name,
    parse_pricing,
    price,
)

USD = Currency.of("USD")
D = Decimal

TIERS = [
    {"up_to": 100, "unit_price": "0"},
    {"up_to": "1000", "unit_price": "0.015", "flat_price": "2"},
    {"up_to": None, "unit_price": "0.0105"},
]


def test_worked_example_voice_overage_20_minutes() -> None:
    """CAT-4, USE-5: 520 minutes used, 500 included, 0.10 a minute over: 20 minutes, 200."""
    config = parse_pricing({"model": "per_unit", "unit_price": "0.10"}, "overage.minutes")
    priced = price(config, D(520), free_units=D(500))
    assert priced.minor(USD) == 200
    assert priced.unit_amount == D("0.10")
    assert priced.details == {
        "model": "per_unit",
        "units": "20",
        "unit_price": "0.10",
        "used": "520",
        "free_units": "500",
    }


@pytest.mark.parametrize(
    ("config", "quantity", "amount"),
    [
        ({"model": "per_unit", "unit_price": "0.10"}, "0", 0),
        ({"model": "per_unit", "unit_price": "0.10"}, "1.5", Fraction(15, 100)),
        ({"model": "per_unit", "unit_price": "0.0015"}, "3", Fraction(45, 10000)),
        ({"model": "package", "size": 10, "price": "5.00"}, "0", 0),
        ({"model": "package", "size": 10, "price": "5.00"}, "1", 5),
        ({"model": "package", "size": 10, "price": "5.00"}, "10", 5),
        ({"model": "package", "size": 10, "price": "5.00"}, "10.01", 10),
        ({"model": "package", "size": "0.5", "price": "1"}, "1.2", 3),
        ({"model": "graduated", "tiers": TIERS}, "0", 0),
        ({"model": "graduated", "tiers": TIERS}, "100", 0),
        ({"model": "graduated", "tiers": TIERS}, "101", Fraction(2015, 1000)),
        ({"model": "graduated", "tiers": TIERS}, "1000", Fraction(1550, 100)),
        ({"model": "graduated", "tiers": TIERS}, "1100", Fraction(1550, 100) + Fraction(105, 100)),
        ({"model": "volume", "tiers": TIERS}, "0", 0),
        ({"model": "volume", "tiers": TIERS}, "100", 0),
        ({"model": "volume", "tiers": TIERS}, "101", Fraction(2) + Fraction(1515, 1000)),
        ({"model": "volume", "tiers": TIERS}, "1000", 17),
        ({"model": "volume", "tiers": TIERS}, "1100", Fraction(1155, 100)),
    ],
)
def test_models_table(config: dict[str, object], quantity: str, amount: Fraction) -> None:
    """CAT-4: each model's amount, exact before rounding."""
    assert price(parse_pricing(config, "p"), D(quantity)).amount == amount


def test_graduated_breakdown_shows_units_per_tier() -> None:
    """CAT-4: the breakdown an invoice line can show."""
    priced = price(parse_pricing({"model": "graduated", "tiers": TIERS}, "p"), D(1100))
    assert priced.unit_amount is None
    assert priced.details["tiers"] == [
        {"up_to": "100", "unit_price": "0", "flat_price": "0", "units": "100", "amount": "0"},
        {
            "up_to": "1000",
            "unit_price": "0.015",
            "flat_price": "2",
            "units": "900",
            "amount": "15.5",
        },
        {
            "up_to": None,
            "unit_price": "0.0105",
            "flat_price": "0",
            "units": "100",
            "amount": "1.05",
        },
    ]


def test_volume_and_package_breakdowns() -> None:
    volume = price(parse_pricing({"model": "volume", "tiers": TIERS}, "p"), D(250))
    assert volume.details["tier"] == {
        "up_to": "1000",
        "unit_price": "0.015",
        "flat_price": "2",
        "index": 1,
    }
    assert volume.unit_amount == D("0.015")
    package = price(parse_pricing({"model": "package", "size": 10, "price": "5"}, "p"), D(25))
    assert package.details["packages"] == 3
    assert package.minor(USD) == 1500


def test_rounding_happens_once_on_the_line() -> None:
    """Rule 1: 3 units at 0.0015 is 0.0045, one line, rounded once to 0 cents; 4 units 0.006
    rounds to 1 cent."""
    config = PerUnit(D("0.0015"))
    assert price(config, 3).minor(USD) == 0
    assert price(config, 4).minor(USD) == 1


def test_free_units_cover_usage() -> None:
    config = PerUnit(D("1"))
    assert price(config, 10, free_units=20).amount == 0
    assert price(config, 10, free_units=20).details["units"] == "0"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "p: expected a mapping"),
        ({}, "p.model: is required"),
        ({"model": "linear"}, "p.model: unknown pricing model 'linear'"),
        ({"model": "per_unit"}, "p.unit_price: is required"),
        ({"model": "per_unit", "unit_price": 0.1}, "p.unit_price: expected a decimal string"),
        ({"model": "per_unit", "unit_price": "-1"}, "p.unit_price: must be at least 0"),
        ({"model": "per_unit", "unit_price": "1", "size": 3}, "p.size: unknown field"),
        ({"model": "package", "size": 0, "price": "1"}, "p.size: must be greater than 0"),
        ({"model": "package", "size": 10}, "p.price: is required"),
        ({"model": "graduated"}, "p.tiers: is required"),
        ({"model": "graduated", "tiers": []}, "p.tiers: needs at least one tier"),
        ({"model": "graduated", "tiers": "x"}, "p.tiers: graduated pricing needs a list"),
        ({"model": "volume", "tiers": [{"up_to": 10}]}, r"p.tiers\[0\].up_to: the last tier"),
        ({"model": "volume", "tiers": [{"unit_price": "1"}]}, r"p.tiers\[0\].up_to: is required"),
        (
            {"model": "volume", "tiers": [{"up_to": None}, {"up_to": None}]},
            r"p.tiers\[0\].up_to: only the last tier may be open",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": 10}, {"up_to": 10}, {"up_to": None}]},
            r"p.tiers\[1\].up_to: must be greater than 10",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": 0}, {"up_to": None}]},
            r"p.tiers\[0\].up_to: must be greater than 0",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": None, "price": "1"}]},
            r"p.tiers\[0\].price: unknown field",
        ),
        (
            {"model": "volume", "tiers": [{"up_to": None, "flat_price": "x"}]},
            r"p.tiers\[0\].flat_price: expected a decimal",
        ),
        ({"model": "volume", "tiers": ["x"]}, r"p.tiers\[0\]: expected a mapping"),
    ],
)
def test_bad_configs_name_the_path(config: object, message: str) -> None:
    """CAT-4: a bad config is refused with the exact path of the mistake."""
    with pytest.raises(InvalidConfig, match=message):
        parse_pricing(config, "p")


@pytest.mark.parametrize(
    "build",
    [
        lambda: PerUnit(D(-1)),
        lambda: PerUnit(0.5),  # type: ignore[arg-type]
        lambda: PerUnit(D("NaN")),
        lambda: Package(D(0), D(1)),
        lambda: Graduated(()),
        lambda: Volume((Tier(D(5)), Tier(D(3)), Tier(None))),
        lambda: Volume((Tier(None, D(-1)),)),
    ],
)
def test_configs_built_in_code_validate_themselves(build: object) -> None:
    with pytest.raises(InvalidConfig):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("quantity", [D(-1), -1, 0.5, D("Infinity")])
def test_bad_quantities_are_refused(quantity: object) -> None:
    with pytest.raises(InvalidInput):
        price(PerUnit(D(1)), quantity)  # type: ignore[arg-type]


def test_registry_knows_the_four_models() -> None:
    assert sorted(MODELS) == ["graduated", "package", "per_unit", "volume"]
    assert model_name(Volume((Tier(None),))) == "volume"
    with pytest.raises(InvalidConfig):
        model_name("nonsense")  # type: ignore[arg-type]


prices = st.decimals(min_value=0, max_value=1000, places=4)
quantities = st.decimals(min_value=0, max_value=10**6, places=3)


@given(unit=prices, flat=prices, quantity=quantities)
def test_graduated_and_volume_agree_on_a_single_tier(
    unit: Decimal, flat: Decimal, quantity: Decimal
) -> None:
    """Property (CAT-4): with one open tier, graduated and volume give the same amount."""
    tiers = (Tier(None, unit, flat),)
    assert price(Graduated(tiers), quantity).amount == price(Volume(tiers), quantity).amount


@given(
    bounds=st.lists(st.integers(1, 10_000), min_size=1, max_size=5, unique=True),
    units=st.lists(prices, min_size=6, max_size=6),
    quantity=quantities,
    extra=quantities,
)
def test_graduated_is_monotone_and_additive_per_tier(
    bounds: list[int], units: list[Decimal], quantity: Decimal, extra: Decimal
) -> None:
    """Property (CAT-4): graduated never charges less for more, and its tier amounts add
    up to its total."""
    tiers = tuple(Tier(D(b), u) for b, u in zip(sorted(bounds), units, strict=False))
    config = Graduated((*tiers, Tier(None, units[-1])))
    small, large = price(config, quantity), price(config, quantity + extra)
    assert small.amount <= large.amount
    tier_rows = small.details["tiers"]
    assert isinstance(tier_rows, list)
    assert sum(Fraction(D(row["amount"])) for row in tier_rows) == small.amount
