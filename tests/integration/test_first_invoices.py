"""Issue 12 item 7, "never charge before the books can hold it" (INV-1, INV-2, SUB-3,
CAT-9), on SQLite and on PostgreSQL (`-m db` under scripts/with-postgres):

* the first invoice of a checkout, and of an assignment charged to the card, is written
  (a draft with its lines and its payment attempt) and committed before the provider is
  asked to take the money: a provider double looks for it from a connection of its own
  at the moment it is called;
* the longest plan name the catalog accepts gives a stored invoice through checkout (on
  PostgreSQL this was a charge of 99.00 and then a 500, with no invoice);
* a plan name of 291 characters is refused at import, naming the path and the limit,
  and nothing is stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import CatalogVersion, Invoice, InvoiceLine, PaymentAttempt, Platform
from tabkeeper.db.tables_credits import CreditGrant
from tabkeeper.domain.catalog_limits import NAME_MAX
from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import CardOnFile, ChargeResult
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services.access import Caller
from tabkeeper.services.assignments import assign_plan
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.credit_reports import credits_view
from tabkeeper.services.organizations import organization_by_code
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import customer_of
from tests.integration.conftest import CATALOG, World, make_world

LONGEST = "L" * NAME_MAX


class BooksFirstProvider(SandboxProvider):
    """The sandbox, but it first checks, from its own connection, that the invoice it is
    asked to collect is already stored: a draft with its lines and a processing attempt."""

    def __init__(self, engine: Engine, world: World) -> None:
        super().__init__(engine, world.clock)
        self.engine = engine
        self.seen: list[tuple[str | None, str, int, int]] = []

    def _books_hold_it(self) -> None:
        with self.engine.connect() as connection:
            found = connection.execute(
                select(Invoice.number, Invoice.status, Invoice.amount_due_minor, Invoice.id).where(
                    Invoice.status == "draft"
                )
            ).all()
            assert len(found) == 1, "the invoice is committed before the provider is called"
            number, status, due, invoice_id = found[0]
            lines = connection.scalar(
                select(func.count())
                .select_from(InvoiceLine)
                .where(InvoiceLine.invoice_id == invoice_id)
            )
            attempts = (
                connection.execute(
                    select(PaymentAttempt.status).where(PaymentAttempt.invoice_id == invoice_id)
                )
                .scalars()
                .all()
            )
            assert attempts == ["processing"]
            self.seen.append((number, status, due, lines or 0))

    def complete_checkout(self, checkout_id: str, card: str) -> tuple[CardOnFile, ChargeResult]:
        self._books_hold_it()
        return super().complete_checkout(checkout_id, card)

    def charge(
        self, customer: str, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        self._books_hold_it()
        return super().charge(customer, token, amount, idempotency_key, description)


def _with_catalog(world: World, plans: dict[str, Any]) -> None:
    document = {**CATALOG, "plans": {**CATALOG["plans"], **plans}}
    with transaction(world.engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, document, world.clock.now())


def _issued(world: World) -> list[tuple[str | None, str, int, list[str]]]:
    with transaction(world.engine) as session:
        invoices = session.scalars(select(Invoice).order_by(Invoice.id)).all()
        return [
            (
                invoice.number,
                invoice.status,
                invoice.total_minor,
                list(
                    session.scalars(
                        select(InvoiceLine.description).where(InvoiceLine.invoice_id == invoice.id)
                    )
                ),
            )
            for invoice in invoices
        ]


def test_checkout_writes_the_invoice_before_the_charge(engine: Engine) -> None:
    """SUB-3: the checkout's invoice (a draft, 30.00, one line) is stored when the card is
    charged; once paid it is numbered INV-000001 and paid."""
    world = make_world(engine)
    provider = BooksFirstProvider(engine, world)
    world.organization("acme")
    subscribe_with_card(world.billing, provider, "acme", "basic", "card_ok")
    assert provider.seen == [(None, "draft", 3000, 1)]
    assert [(n, s, t) for n, s, t, _ in _issued(world)] == [("INV-000001", "paid", 3000)]


def test_a_declined_checkout_leaves_no_invoice_and_no_gap(engine: Engine) -> None:
    """INV-2: the draft of a declined checkout goes; the next invoice is INV-000001."""
    world = make_world(engine)
    provider = BooksFirstProvider(engine, world)
    world.organization("acme")
    with pytest.raises(Exception, match="declined"):
        subscribe_with_card(world.billing, provider, "acme", "basic", "card_fails_later")
    assert _issued(world) == []
    subscribe_with_card(world.billing, provider, "acme", "basic", "card_ok")
    assert [n for n, *_ in _issued(world)] == ["INV-000001"]


def test_cat9_assignment_by_card_writes_the_invoice_before_the_charge(engine: Engine) -> None:
    """CAT-9: an assignment charged to the card on file claims the charge with the draft
    invoice (1200.00 negotiated) stored, then numbers and pays it."""
    world = make_world(engine)
    provider = BooksFirstProvider(engine, world)
    world.organization("acme")
    with world.billing() as b:
        customer = customer_of(organization_by_code(b, "acme"))
    card = provider.attach(customer, "card_ok")
    with world.billing() as b:
        save_payment_method(b, organization_by_code(b, "acme"), card)
    caller = Caller(world.platform_id)
    assign_plan(world.billing, provider, caller, "acme", "pro", "1200.00", "card")
    assert provider.seen == [(None, "draft", 120000, 1)]
    assert _issued(world) == [("INV-000001", "paid", 120000, ["Pro (Jan 1 – Feb 1)"])]


def test_the_longest_plan_name_gives_a_stored_invoice(engine: Engine) -> None:
    """Item 7: a plan named with NAME_MAX characters (with included credits, described
    with its name too) is charged and invoiced, its line description within the column
    (on PostgreSQL too: no charge without an invoice)."""
    world = make_world(engine)
    long_plan = {"name": LONGEST, "price": "99.00", "rank": 5, "credits": {"amount": 100}}
    _with_catalog(world, {"long": long_plan})
    world.organization("acme")
    world.subscribe("acme", "long")
    ((number, status, total, (description,)),) = _issued(world)
    assert (number, status, total) == ("INV-000001", "paid", 9900)
    assert description == f"{LONGEST} (Jan 1 – Feb 1)"
    assert world.charges() == 1
    with world.billing() as b:  # the included credits are granted when first read
        assert credits_view(b, organization_by_code(b, "acme")).balance == 100
    assert world.count(CreditGrant, CreditGrant.description.startswith(LONGEST)) == 1


def test_a_plan_name_of_291_characters_is_refused_at_import(engine: Engine) -> None:
    """Item 7: refused at import on both databases, naming the path and the limit; no
    catalog version is stored."""
    world = make_world(engine)
    before = world.count(CatalogVersion)
    with pytest.raises(
        InvalidConfig, match=r"^catalog\.plans\.long\.name: at most 160 characters .* got 291$"
    ):
        _with_catalog(world, {"long": {"name": "L" * 291, "price": "99.00"}})
    assert world.count(CatalogVersion) == before
