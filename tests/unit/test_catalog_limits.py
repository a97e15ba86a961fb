"""Issue 12 item 7, "never charge before the books can hold it": what an invoice takes
from the catalog is checked against the columns that store it when the catalog is built,
so SQLite and PostgreSQL refuse the same catalogs (CAT-1, CAT-5, INV-2)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tabkeeper.db.tables import InvoiceLine, Subscription, SubscriptionAddon
from tabkeeper.db.tables_credits import CreditGrant
from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.catalog_limits import (
    AMOUNT_MAX,
    DECIMAL_TEXT_MAX,
    DESCRIPTION_MAX,
    GRANT_DESCRIPTION_MAX,
    NAME_MAX,
    fit_description,
)
from tabkeeper.domain.errors import InvalidConfig, InvalidInput
from tabkeeper.domain.invoicing import (
    LineDraft,
    LineKind,
    addon_line,
    plan_line,
    unused_credit_line,
)
from tabkeeper.domain.money import Currency
from tabkeeper.domain.periods import Interval, Period, ProrationMode

USD = Currency.of("USD")
JAN = datetime(2026, 12, 31, tzinfo=UTC)
FEB = datetime(2027, 1, 31, tzinfo=UTC)


def _length(column: object) -> int:
    length = column.property.columns[0].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


def test_limits_are_the_columns() -> None:
    """The numbers checked at import are the lengths of the columns in db/tables.py."""
    assert _length(InvoiceLine.description) == DESCRIPTION_MAX
    assert _length(CreditGrant.description) == GRANT_DESCRIPTION_MAX
    assert NAME_MAX + len(": included AI credits") <= GRANT_DESCRIPTION_MAX
    assert _length(InvoiceLine.unit_amount) == DECIMAL_TEXT_MAX
    assert _length(InvoiceLine.quantity) == DECIMAL_TEXT_MAX
    assert _length(Subscription.plan_code) == 64
    assert _length(SubscriptionAddon.addon_code) == 64


def _plan(name: str, price: str = "99.00", **more: object) -> dict[str, object]:
    return {"plans": {"big": {"name": name, "price": price, **more}}}


@pytest.mark.parametrize("length", [NAME_MAX + 1, 291, 300, 1000])
def test_plan_name_too_long_for_invoice_line_refused(length: int) -> None:
    """A plan name of 291+ characters (any over NAME_MAX) is refused naming the path and
    the limit: on PostgreSQL it would have been charged and then not stored."""
    with pytest.raises(InvalidConfig, match=rf"^plans\.big\.name: at most {NAME_MAX} characters"):
        build_catalog(_plan("N" * length), USD)


def test_addon_name_too_long_refused() -> None:
    doc = {
        **_plan("Pro"),
        "addons": {"slot": {"name": "S" * (NAME_MAX + 1), "price": "5.00", "adds": {"agents": 1}}},
    }
    with pytest.raises(InvalidConfig, match=r"^addons\.slot\.name: at most 160 characters"):
        build_catalog(doc, USD)


def test_price_beyond_what_an_invoice_holds_refused() -> None:
    with pytest.raises(InvalidConfig, match=r"^plans\.big\.price: at most 2147483647 "):
        build_catalog(_plan("Pro", "21474836.48"), USD)
    assert build_catalog(_plan("Pro", "21474836.47"), USD).plan("big").price.minor == AMOUNT_MAX


def test_overage_decimal_too_long_refused() -> None:
    unit_price = "0." + "0" * 40 + "1"
    doc = {
        "meters": {"minutes": {"kind": "count", "event": "call"}},
        **_plan("Pro", overage={"minutes": {"model": "per_unit", "unit_price": unit_price}}),
    }
    with pytest.raises(
        InvalidConfig, match=r"^plans\.big\.overage\.minutes\.unit_price: at most 40 characters"
    ):
        build_catalog(doc, USD)


def test_longest_name_fits_every_line_description() -> None:
    """The longest allowed name gives descriptions within the column, prorated included."""
    doc = {
        **_plan("P" * NAME_MAX),
        "addons": {"slot": {"name": "A" * NAME_MAX, "price": "5.00", "adds": {"agents": 1}}},
    }
    catalog = build_catalog(doc, USD)
    period = Period(JAN, FEB, 0)
    lines = [
        plan_line(catalog.plan("big"), period),
        addon_line(catalog.addon("slot"), 12345, period, Interval.MONTH),
        unused_credit_line(
            catalog.plan("big"), period, JAN.replace(day=31, hour=1), ProrationMode.SECOND
        ),
    ]
    for line in lines:
        assert line is not None
        assert len(line.description) <= DESCRIPTION_MAX
        assert "P" * NAME_MAX in line.description or "A" * NAME_MAX in line.description
        assert "…" not in line.description  # nothing cut


def test_description_builder_never_exceeds_the_column() -> None:
    """A name longer than the column is cut with "…", never left too long for the books."""
    fitted = fit_description("x" * 400, " (Jan 1 – Feb 1)")
    assert len(fitted) == DESCRIPTION_MAX and fitted.endswith("… (Jan 1 – Feb 1)")
    assert fit_description("Pro", " (Jan 1 – Feb 1)") == "Pro (Jan 1 – Feb 1)"
    with pytest.raises(InvalidInput, match="line description: at most 300 characters"):
        LineDraft(LineKind.SUBSCRIPTION, "d" * 301, Decimal(1), None, 1, None, None, {})
