"""Add-on slots: the Add-ons & extras panel, a quote, add, remove (ADD-1..4, CAT-5, INV-1).

Who: the organization's owner or the platform's key (ACL-1: add-ons are the owner's
alone; billing admins and plain members get 403). Another organization is 404 (ACL-3),
whatever the caller's role. Adding slots issues the prorated invoice at once and the
billing clock collects it; a retried request with the same Idempotency-Key buys nothing
twice (api/idempotency.py).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from tabkeeper.api import schemas_addons as schemas
from tabkeeper.api import schemas_billing
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.routes.invoices import show_invoice
from tabkeeper.db.tables import Invoice, InvoiceLine, Organization
from tabkeeper.domain.catalog import AddOn
from tabkeeper.domain.periods import Interval
from tabkeeper.services import addons as service
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.context import Billing

router = APIRouter(tags=["addons"])


def _owner_organization(b: Billing, caller: Caller, code: str) -> Organization:
    """The organization `code` (404 when the caller does not see it), for its owner."""
    organization = organization_for(b, caller, code)
    caller.require_owner()
    return organization


def _addon(addon: AddOn, interval: Interval) -> schemas.Addon:
    """The add-on as sold with a plan of `interval`: that interval's price (CAT-8)."""
    price = addon.price_for(interval)
    return schemas.Addon(
        code=addon.code,
        name=addon.name,
        price_per_slot_minor=price.minor,
        currency=price.currency.code,
        interval=interval.value,
        adds={resource.value: count for resource, count in addon.adds.items()},
        requires_plans=None if addon.requires_plans is None else list(addon.requires_plans),
    )


def _card(card: service.AddonCard, interval: Interval) -> schemas.AddonCard:
    return schemas.AddonCard(
        **_addon(card.addon, interval).model_dump(),
        quantity=card.quantity,
        quantity_next_period=card.quantity_next_period,
    )


def _invoice(b: Billing, organization: str, row: Invoice | None) -> schemas_billing.Invoice | None:
    if row is None:
        return None
    lines = b.session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == row.id).order_by(InvoiceLine.position)
    )
    return show_invoice(organization, row, list(lines))


def _changed(
    b: Billing, organization: Organization, changed: service.SlotsChanged
) -> schemas.SlotsChanged:
    return schemas.SlotsChanged(
        message=changed.message,
        organization=organization.code,
        addon=changed.addon.code,
        quantity=changed.quantity,
        quantity_next_period=changed.quantity_next_period,
        interval_total_minor=changed.interval_total.minor,
        effective_at=changed.effective_at,
        invoice=_invoice(b, organization.code, changed.invoice),
    )


@router.get("/addons", operation_id="addons.list")
def list_addons(organization: str, api: ApiDep, caller: CallerDep) -> schemas.Addons:
    """The Add-ons & extras panel (PRT-1): the active add-on cards (price per slot, slots
    now and from the next billing date, what a slot adds), the add-ons the plan allows,
    and the total the next billing date bills."""
    with api.reading(caller) as b:
        found = _owner_organization(b, caller, organization)
        panel = service.list_addons(b, found)
        return schemas.Addons(
            organization=found.code,
            plan=panel.plan.code,
            plan_name=panel.plan.name,
            currency=panel.plan.price.currency.code,
            interval=panel.plan.interval.value,
            next_billing_at=panel.next_billing_at,
            interval_total_minor=panel.interval_total.minor,
            active=[_card(card, panel.plan.interval) for card in panel.active],
            available=[_addon(addon, panel.plan.interval) for addon in panel.available],
        )


@router.post("/addons/quote", operation_id="addons.quote")
def quote_slots(body: schemas.SlotsIn, api: ApiDep, caller: CallerDep) -> schemas.SlotsQuote:
    """What adding slots would cost (ADD-2): price per slot, the new monthly total and the
    prorated amount due now. Nothing is bought; the same checks as adding apply."""
    with api.billing(caller) as b:
        found = _owner_organization(b, caller, body.organization)
        quote = service.quote_slots(b, found, body.addon, body.quantity, caller.member)
        return schemas.SlotsQuote(
            organization=found.code,
            addon=quote.addon.code,
            addon_name=quote.addon.name,
            quantity=quote.quantity,
            price_per_slot_minor=quote.price_per_slot.minor,
            currency=quote.price_per_slot.currency.code,
            slots_after=quote.slots_after,
            interval_total_before_minor=quote.interval_total_before.minor,
            interval_total_after_minor=quote.interval_total_after.minor,
            prorated_minor=quote.prorated.minor,
            amount_due_minor=quote.amount_due.minor,
            period_end=quote.period_end,
        )


@router.post("/addons/add", operation_id="addons.add")
def add_slots(body: schemas.SlotsIn, api: ApiDep, caller: CallerDep) -> schemas.SlotsChanged:
    """Add slots (ADD-2): in force at once; the prorated part of the period is invoiced
    at once and collected by the billing clock ("Slots added successfully.")."""
    with api.billing(caller) as b:
        found = _owner_organization(b, caller, body.organization)
        changed = service.add_slots(b, found, body.addon, body.quantity, caller.member)
        return _changed(b, found, changed)


@router.post("/addons/remove", operation_id="addons.remove")
def remove_slots(body: schemas.SlotsIn, api: ApiDep, caller: CallerDep) -> schemas.SlotsChanged:
    """Remove slots from the next billing date (ADD-3), refunding nothing; refused below
    what is in use, saying how many to archive or delete first ("Slots removed
    successfully.")."""
    with api.billing(caller) as b:
        found = _owner_organization(b, caller, body.organization)
        changed = service.remove_slots(b, found, body.addon, body.quantity, caller.member)
        return _changed(b, found, changed)
