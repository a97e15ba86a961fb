"""Add-on slots through the services, on SQLite and PostgreSQL (ADD-1..4, CAT-5, INV-1):
the panel, a quote, adding (prorated invoice at once, collected by the billing clock,
capacity at once), removing (from the next billing date, no refund, refused below use).

Bad requests tried, each refused with a clear error and nothing changed: a member without
rights (billing admin, plain member, someone unknown), 0 slots, 1,001 slots, more than
1,000 slots in all, removing more than owned, an unknown add-on, an add-on on a plan it
does not allow, a trial, a past_due subscription, one canceled at the period's end, an
ended one, one waiting for its renewal, a sub-account, an organization with no
subscription.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, InvoiceLine, Platform
from tabkeeper.domain.decisions import BUY_MORE_SEATS_MESSAGE, Action
from tabkeeper.domain.errors import Forbidden, InvalidInput, Refused, TabkeeperError
from tabkeeper.domain.money import Currency, Money
from tabkeeper.services import addons, changes, subscriptions
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.context import Billing
from tabkeeper.services.limits import check
from tabkeeper.services.organizations import (
    add_member,
    create_agent,
    create_organization,
    organization_by_code,
    remove_member,
)
from tabkeeper.services.payment_methods import clear_payment_methods
from tabkeeper.services.records import pending_work
from tests.integration.conftest import CATALOG as WORLD_CATALOG
from tests.integration.conftest import FEB_1, JAN_1, World, every_row, make_world

USD = Currency.of("USD")
CATALOG: dict[str, Any] = {
    **WORLD_CATALOG,
    "plans": {
        **WORLD_CATALOG["plans"],
        "basic": {**WORLD_CATALOG["plans"]["basic"], "limits": {"agents": 1, "seats": 2}},
    },
    "addons": {
        "extra_agent": {"name": "Extra agent", "price": "10.00", "adds": {"agents": 1}},
        "extra_seat": {"name": "Extra seat", "price": "5.00", "adds": {"seats": 1}},
        "max": {"name": "Pro Max", "price": "200.00", "requires_plans": ["pro"]},
    },
}
"""The world's catalog (Basic 30.00: 1 agent, 2 team seats besides the owner) with three
add-ons."""
JAN_11 = JAN_1 + timedelta(days=10)
TRIAL = {"trial": {"days": 14, "sessions": 50, "plan": "trial"}}


def addon_world(engine: Engine, settings: dict[str, Any] | None = None) -> World:
    world = make_world(engine, settings)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, CATALOG, world.clock.now())
    return world


@pytest.fixture
def acme(engine: Engine) -> World:
    """acme (alice owner, bob billing admin, carol member) on Basic since Jan 1; now Jan 11."""
    world = addon_world(engine)
    world.organization("acme", {"alice": "owner", "bob": "billing_admin", "carol": "member"})
    world.subscribe("acme", "basic")
    world.clock.set(JAN_11)
    return world


def _org(b: Billing, code: str = "acme") -> Any:
    return organization_by_code(b, code)


def _state(world: World) -> dict[str, Any]:
    """Every row of every table: what "nothing changed" is checked against."""
    return every_row(world.engine)


def _refused(
    world: World,
    action: Callable[[Billing], object],
    error: type[TabkeeperError],
    code: str,
    message: str,
) -> None:
    before = _state(world)
    with pytest.raises(error, match=message) as raised, world.billing() as b:
        action(b)
    assert raised.value.code == code
    assert _state(world) == before


def _lines(world: World, invoice_id: int) -> list[InvoiceLine]:
    with transaction(world.engine) as session:
        return list(
            session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))
        )


def test_adding_slots_charges_the_prorated_part_at_once(acme: World) -> None:
    """ADD-2, INV-1: 2 slots on Jan 11 (21 of January's 31 days left, proration by the
    second): 2 × 10.00 × 21/31 = 13.548… → 1355, on its own invoice, collected by the
    billing clock; "Slots added successfully."; capacity is raised at once."""
    with acme.billing() as b:
        assert check(b, _org(b), Action.ADD_AGENT).numbers["limit"] == 1
        changed = addons.add_slots(b, _org(b), "extra_agent", 2, "alice")
        assert changed.message == "Slots added successfully."
        assert (changed.quantity, changed.quantity_next_period) == (2, 2)
        assert changed.interval_total == Money(5000, USD)
        assert changed.effective_at == JAN_11
        invoice = changed.invoice
        assert invoice is not None
        assert (invoice.total_minor, invoice.status) == (1355, "open")
        assert invoice.source_key == f"slots:{_sub_id(b)}:extra_agent:1"
        assert check(b, _org(b), Action.ADD_AGENT).numbers["limit"] == 3
        invoice_id = invoice.id
    (line,) = _lines(acme, invoice_id)
    assert (line.kind, line.quantity, line.amount_minor) == ("proration", "2", 1355)
    assert line.description == "Extra agent × 2 (Jan 11 – Feb 1, prorated)"
    assert line.details["fraction"] == "21/31"
    charges = acme.charges()
    acme.worker().tick()
    assert acme.charges() == charges + 1
    assert acme.invoices(Invoice.id == invoice_id, Invoice.status == "paid") == 1


def _sub_id(b: Billing) -> int:
    subscription = subscriptions.subscription_of(b, _org(b))
    assert subscription is not None
    return subscription.id


def test_each_purchase_is_its_own_invoice(acme: World) -> None:
    """INV-1, INV-4: two purchases of one add-on make two invoices with their own source
    keys (n counts that add-on's slot invoices of the subscription)."""
    keys = []
    for _ in range(2):
        with acme.billing() as b:
            invoice = addons.add_slots(b, _org(b), "extra_agent", 1).invoice
            assert invoice is not None
            keys.append(invoice.source_key)
    with acme.billing() as b:
        sub = _sub_id(b)
    assert keys == [f"slots:{sub}:extra_agent:1", f"slots:{sub}:extra_agent:2"]
    with acme.billing() as b:
        card = addons.list_addons(b, _org(b)).active[0]
        assert (card.addon.code, card.quantity, card.quantity_next_period) == ("extra_agent", 2, 2)


def test_the_quote_shows_price_total_and_amount_due(acme: World) -> None:
    """ADD-2: before confirming: price per slot, the new monthly total, and the prorated
    amount due now, less the account credit; a quote buys nothing."""
    with acme.billing() as b:
        _org(b).account_credit_minor = 500
    before = _state(acme)
    with acme.billing() as b:
        quote = addons.quote_slots(b, _org(b), "extra_agent", 2, "alice")
    assert _state(acme) == before
    assert quote.price_per_slot == Money(1000, USD)
    assert (quote.quantity, quote.slots_after) == (2, 2)
    assert quote.interval_total_before == Money(3000, USD)
    assert quote.interval_total_after == Money(5000, USD)
    assert quote.prorated == Money(1355, USD)
    assert quote.amount_due == Money(855, USD)
    assert quote.period_end == FEB_1
    with acme.billing() as b:
        invoice = addons.add_slots(b, _org(b), "extra_agent", 2).invoice
        assert invoice is not None
        assert (invoice.total_minor, invoice.amount_due_minor) == (1355, 855)


def test_slots_renew_with_the_plan_and_removal_waits_for_it(acme: World) -> None:
    """ADD-3, INV-1: removing slots lowers only the next period; no invoice, no credit;
    "Slots removed successfully."; the renewal bills plan + the slots left in advance."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_agent", 3)
        addons.add_slots(b, _org(b), "extra_seat", 1)
    invoices = acme.invoices()
    with acme.billing() as b:
        removed = addons.remove_slots(b, _org(b), "extra_agent", 2, "alice")
        assert removed.message == "Slots removed successfully."
        assert (removed.quantity, removed.quantity_next_period) == (3, 1)
        assert (removed.effective_at, removed.invoice) == (FEB_1, None)
        assert removed.interval_total == Money(3000 + 1000 + 500, USD)
        assert _org(b).account_credit_minor == 0
        assert check(b, _org(b), Action.ADD_AGENT).numbers["limit"] == 4
        panel = addons.list_addons(b, _org(b))
    assert acme.invoices() == invoices
    assert [(c.addon.code, c.quantity, c.quantity_next_period) for c in panel.active] == [
        ("extra_agent", 3, 1),
        ("extra_seat", 1, 1),
    ]
    assert panel.interval_total == Money(4500, USD) and panel.next_billing_at == FEB_1
    acme.worker().run_until(FEB_1 + timedelta(hours=1))
    with transaction(acme.engine) as session:
        renewal = session.scalars(select(Invoice).where(Invoice.issued_at == FEB_1)).one()
        lines = session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == renewal.id)
            .order_by(InvoiceLine.position)
        )
        assert [(line.kind, line.quantity, line.amount_minor) for line in lines] == [
            ("subscription", "1", 3000),
            ("addon", "1", 1000),
            ("addon", "1", 500),
        ]
    with acme.billing() as b:
        assert check(b, _org(b), Action.ADD_AGENT).numbers["limit"] == 2


def test_removal_below_use_says_how_many_to_archive(acme: World) -> None:
    """ADD-3: refused below what is in use, with the count to archive or delete first."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_agent", 3)
    with acme.billing() as b:
        for agent in ("a1", "a2", "a3"):
            create_agent(b, _org(b), agent)
    _refused(
        acme, lambda b: addons.remove_slots(b, _org(b), "extra_agent", 3),
        Refused, "capacity_in_use",
        "From the next billing date Basic and its remaining slots allow 1 agent; archive or "
        "delete 2 agents first.",
    )  # fmt: skip
    with acme.billing() as b:
        assert addons.remove_slots(b, _org(b), "extra_agent", 1).quantity_next_period == 2


def test_removing_seat_slots_counts_members(acme: World) -> None:
    """ADD-3, ADD-4: seats in use are the members besides the owner; removing the seat that
    dave took is refused until a member is removed."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_seat", 1)
        add_member(b, _org(b), "dave", "member")
    _refused(
        acme, lambda b: addons.remove_slots(b, _org(b), "extra_seat", 1),
        Refused, "capacity_in_use", "allow 2 seats; remove 1 seat first",
    )  # fmt: skip
    with acme.billing() as b:
        remove_member(b, _org(b), "dave")
        assert addons.remove_slots(b, _org(b), "extra_seat", 1).quantity_next_period == 0


def test_seat_slots_answer_buy_more_seats_then_raise_the_limit(acme: World) -> None:
    """ADD-4: at the seat limit the answer is "Buy more seats"; bought seats count at once."""
    with acme.billing() as b:
        full = check(b, _org(b), Action.ADD_SEAT)
        assert (full.allowed, full.message) == (False, BUY_MORE_SEATS_MESSAGE)
        addons.add_slots(b, _org(b), "extra_seat", 1)
        assert check(b, _org(b), Action.ADD_SEAT).allowed


def test_a_layered_addon_is_allowed_only_on_its_plan(acme: World) -> None:
    """CAT-5: "Pro Max" requires Pro: refused on Basic naming Pro; the panel lists only
    the add-ons the plan allows; on Pro it is bought like any add-on."""
    _refused(
        acme, lambda b: addons.add_slots(b, _org(b), "max", 1),
        Refused, "addon_not_allowed", "Pro Max is available on Pro only, not on Basic",
    )  # fmt: skip
    with acme.billing() as b:
        panel = addons.list_addons(b, _org(b))
        assert [a.code for a in panel.available] == ["extra_agent", "extra_seat"]
        assert (panel.active, panel.plan.code) == ((), "basic")
    with acme.billing() as b:
        changes.change_plan(b, _org(b), "pro", "immediately")
    with acme.billing() as b:
        assert addons.add_slots(b, _org(b), "max", 1).quantity == 1
        assert [a.code for a in addons.list_addons(b, _org(b)).available] == [
            "extra_agent",
            "extra_seat",
            "max",
        ]


def test_no_proration_adds_slots_without_an_invoice(engine: Engine) -> None:
    """ADD-2 with proration `none` (SCENARIOS.md): the slots apply with no proration
    line, so no invoice; the renewal bills them."""
    world = addon_world(engine, {"proration": "none"})
    world.organization("acme")
    world.subscribe("acme", "basic")
    world.clock.set(JAN_11)
    invoices = world.invoices()
    with world.billing() as b:
        changed = addons.add_slots(b, _org(b), "extra_agent", 2)
        assert changed.invoice is None and changed.quantity == 2
        assert addons.quote_slots(b, _org(b), "extra_agent", 1).prorated == Money(0, USD)
    assert world.invoices() == invoices


@pytest.mark.parametrize(
    ("member", "quantity", "addon", "error", "code", "message"),
    [
        ("bob", 1, "extra_agent", Forbidden, "forbidden", "Only the organization's owner"),
        ("carol", 1, "extra_agent", Forbidden, "forbidden", "Only the organization's owner"),
        ("mallory", 1, "extra_agent", Forbidden, "forbidden", "Only the organization's owner"),
        ("alice", 0, "extra_agent", InvalidInput, "invalid_quantity", "from 1 to 1,000 slots"),
        ("alice", 1001, "extra_agent", InvalidInput, "invalid_quantity", "got 1001"),
        ("alice", 1, "gold", InvalidInput, "unknown_addon", "unknown add-on 'gold'"),
        (None, 1, "max", Refused, "addon_not_allowed", "available on Pro only"),
    ],
)
@pytest.mark.parametrize("operation", ["quote", "add", "remove"])
def test_bad_requests_change_nothing(
    acme: World,
    operation: str,
    member: str | None,
    quantity: int,
    addon: str,
    error: type[TabkeeperError],
    code: str,
    message: str,
) -> None:
    """ADD-1 (owner only), ADD-2, ADD-3, CAT-5. Bad input tried: a billing admin, a plain
    member, someone who is not a member, 0 slots, 1,001 slots, an unknown add-on, an
    add-on the plan does not allow (which a removal does not ask: nothing to remove)."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_agent", 1)
    if operation == "remove" and code == "addon_not_allowed":
        code, error, message = "not_enough_slots", Refused, "has 0 slots of Pro Max"
    run = {
        "quote": addons.quote_slots,
        "add": addons.add_slots,
        "remove": addons.remove_slots,
    }[operation]
    _refused(acme, lambda b: run(b, _org(b), addon, quantity, member), error, code, message)


def test_removing_more_than_owned_is_refused(acme: World) -> None:
    """ADD-3. Bad input tried: removing 3 of 2 slots, and again after 1 is removed."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_agent", 2)
    _refused(
        acme, lambda b: addons.remove_slots(b, _org(b), "extra_agent", 3),
        Refused, "not_enough_slots", "has 2 slots of Extra agent from the next billing date",
    )  # fmt: skip
    with acme.billing() as b:
        addons.remove_slots(b, _org(b), "extra_agent", 1)
    _refused(
        acme, lambda b: addons.remove_slots(b, _org(b), "extra_agent", 2),
        Refused, "not_enough_slots", "has 1 slot of Extra agent",
    )  # fmt: skip


def test_more_than_1000_slots_in_all_is_refused(acme: World) -> None:
    """Bad input tried: 1,000 slots, then 1 more."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_seat", 1000)
    _refused(
        acme, lambda b: addons.add_slots(b, _org(b), "extra_seat", 1),
        Refused, "too_many_slots", "at most 1,000 slots of Extra seat; it has 1,000",
    )  # fmt: skip


def test_a_trial_cannot_buy_slots(engine: Engine) -> None:
    """ADD-1: only on an active subscription. Bad input tried: a trial."""
    world = addon_world(engine, TRIAL)
    world.organization("acme")
    _refused(
        world, lambda b: addons.add_slots(b, _org(b), "extra_agent", 1),
        Refused, "not_active", "this one is trialing",
    )  # fmt: skip


def test_a_past_due_subscription_cannot_change_slots(acme: World) -> None:
    """ADD-1. Bad input tried: past_due (the renewal could not be collected)."""
    with acme.billing() as b:
        clear_payment_methods(b, _org(b))
    acme.worker().run_until(FEB_1 + timedelta(hours=1))
    for run in (addons.add_slots, addons.remove_slots):
        _refused(
            acme, lambda b, run=run: run(b, _org(b), "extra_agent", 1, None),
            Refused, "not_active", "this one is past due",
        )  # fmt: skip


def test_a_canceled_subscription_cannot_change_slots(acme: World) -> None:
    """ADD-1. Bad input tried: canceled at the period's end, then ended."""
    with acme.billing() as b:
        subscriptions.cancel(b, _org(b))
    _refused(
        acme, lambda b: addons.add_slots(b, _org(b), "extra_agent", 1),
        Refused, "cancel_pending", "resume it",
    )  # fmt: skip
    acme.worker().run_until(FEB_1 + timedelta(hours=1))
    _refused(
        acme, lambda b: addons.add_slots(b, _org(b), "extra_agent", 1),
        Refused, "not_active", "this one is canceled",
    )  # fmt: skip


def test_slots_wait_for_a_due_renewal(acme: World) -> None:
    """Bad input tried: the period has ended and the billing clock has not renewed yet."""
    acme.clock.set(FEB_1)
    _refused(
        acme, lambda b: addons.add_slots(b, _org(b), "extra_agent", 1),
        Refused, "renewal_due", "renewal is due",
    )  # fmt: skip


def test_a_sub_account_or_no_subscription_is_refused(acme: World) -> None:
    """SUB-2, ADD-1. Bad input tried: a sub-account (it shares its organization's
    subscription), an organization with no subscription."""
    with acme.billing() as b:
        create_organization(b, "acme-eu", {"owner": "owner"}, parent="acme")
        create_organization(b, "globex", {"owner": "owner"})
    refusals = (
        ("acme-eu", "sub_account", "Billing is at the organization level"),
        ("globex", "no_subscription", "This organization has no subscription."),
    )
    for code, refusal, message in refusals:
        for run in (addons.list_addons, lambda b, org: addons.add_slots(b, org, "extra_agent", 1)):
            _refused(
                acme, lambda b, run=run, code=code: run(b, _org(b, code)), Refused, refusal, message
            )


def test_collection_is_queued_now(acme: World) -> None:
    """INV-1: the slots' invoice is collected by the billing clock now."""
    with acme.billing() as b:
        addons.add_slots(b, _org(b), "extra_agent", 1)
        assert [w.due_at for w in pending_work(b, _org(b).id, "collect")] == [JAN_11]
