"""Prepaid AI credits: balance and grants, ledger, spend, top-ups, consumption,
adjustments (CRD-1..4, INV-1, LIM-2).

Who (ACL-1: credits are a billing right):
- reading and `POST /credits/top-up`: the owner, a billing admin or the platform's key; a
  plain member 403. Only the platform's key may set a top-up's `price`.
- `POST /credits/consume`, `POST /credits/consume/batch` and `POST /credits/grants`: the
  platform's key only.
Another organization is 404 (ACL-3), whatever the caller's role. Credits are the billing
organization's: a sub-account's agents consume its organization's credits, and the
sub-account itself has none to read or buy (409 `sub_account`).

A consumption the balance cannot cover is 409 `credits_exhausted` (problem+json, nothing
taken); an unknown feature is 400 `unknown_feature`; the check's other refusals (no
subscription, ended, grace over, feature not in the plan) are 409 with the check's reason
code as `code`. In a batch, each consumption is accepted or refused on its own, with the
same codes (an unknown organization: `not_found`); the batch itself answers 200.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from tabkeeper.api import schemas_credits as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.routes.invoices import show_invoice
from tabkeeper.db.tables import InvoiceLine, Organization
from tabkeeper.db.tables_credits import CreditEntry, CreditGrant
from tabkeeper.domain.errors import Forbidden
from tabkeeper.domain.money import Money
from tabkeeper.services import credit_purchases, credit_reports
from tabkeeper.services.access import Caller, organization_for
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_batches import Use, consume_batch
from tabkeeper.services.credits import Used, consume_by_code

router = APIRouter(tags=["credits"])
Instant = Annotated[datetime | None, Query(description="An ISO 8601 instant with its offset.")]


def _billed(b: Billing, caller: Caller, code: str) -> Organization:
    """The organization `code` (404 unless the caller sees it), for billing rights."""
    organization = organization_for(b, caller, code)
    caller.require_billing()
    return organization


def _grant(row: CreditGrant) -> schemas.Grant:
    return schemas.Grant(
        id=row.id,
        kind=row.kind,
        amount=row.amount,
        remaining=row.remaining,
        priority=row.priority,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        description=row.description,
        invoice_id=row.invoice_id,
    )


@router.get("/credits", operation_id="credits.get")
def get_credits(organization: str, api: ApiDep, caller: CallerDep) -> schemas.CreditsView:
    """The balance (CRD-1), the part the plan included (used first, CRD-2), when the plan
    next grants credits, and the live grants in the order they will be used."""
    with api.billing(caller) as b:
        found = _billed(b, caller, organization)
        view = credit_reports.credits_view(b, found)
        return schemas.CreditsView(
            organization=found.code,
            balance=view.balance,
            included=view.included,
            purchased=view.purchased,
            next_grant_at=view.next_grant_at,
            next_grant=view.next_grant,
            grants=[_grant(row) for row in view.grants],
        )


@router.get("/credits/history", operation_id="credits.history")
def credit_history(
    organization: str,
    api: ApiDep,
    caller: CallerDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.Entry]:
    """The ledger (CRD-2): every grant, use and expiry, oldest first, with the balance
    after each; the balance is always the sum of the entries."""
    with api.billing(caller) as b:
        found = _billed(b, caller, organization)
        query = credit_reports.history_query(b, found)
        codes = dict(
            b.session.execute(
                select(Organization.id, Organization.code).where(
                    (Organization.id == found.id) | (Organization.parent_id == found.id)
                )
            ).all()
        )

        def show(row: CreditEntry) -> schemas.Entry:
            return schemas.Entry(
                id=row.id,
                kind=row.kind,
                amount=row.amount,
                balance_after=row.balance_after,
                at=row.at,
                grant_id=row.grant_id,
                feature=row.feature,
                agent=row.agent,
                quantity=row.uses,
                used_by=None if row.used_by_id is None else codes.get(row.used_by_id),
            )

        return page(b.session, query, CreditEntry.id, limit, cursor, show)


@router.get("/credits/spend", operation_id="credits.spend")
def credit_spend(
    organization: str,
    api: ApiDep,
    caller: CallerDep,
    since: Instant = None,
    until: Instant = None,
) -> schemas.Spend:
    """Where AI credits go (CRD-4): uses and credits per feature and per agent, in the
    current billing period by default, or in [since, until)."""
    with api.billing(caller) as b:
        found = _billed(b, caller, organization)
        spent = credit_reports.spend(b, found, since, until)
        return schemas.Spend(
            organization=found.code,
            since=spent.since,
            until=spent.until,
            total=schemas.Spent(uses=spent.total.uses, credits=spent.total.credits),
            features={
                k: schemas.Spent(uses=v.uses, credits=v.credits) for k, v in spent.features.items()
            },
            agents={
                k: schemas.Spent(uses=v.uses, credits=v.credits) for k, v in spent.agents.items()
            },
        )


@router.post("/credits/top-up", operation_id="credits.top_up")
def top_up(body: schemas.TopUpIn, api: ApiDep, caller: CallerDep) -> schemas.ToppedUp:
    """Buy credits (CRD-1, INV-1): granted at once (a paused AI feature resumes, CRD-3),
    invoiced at once on their own invoice with one `credits` line, collected by the
    billing clock. Purchased credits never expire and are never refunded."""
    with api.billing(caller) as b:
        found = _billed(b, caller, body.organization)
        price = None
        if body.price is not None:
            if not caller.is_platform:
                raise Forbidden("Only the platform's API key may set a top-up's price.")
            price = Money.parse(body.price, b.terms.currency, "price")
        bought = credit_purchases.top_up(b, found, body.credits, price, caller.member)
        lines = b.session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == bought.invoice.id)
            .order_by(InvoiceLine.position)
        )
        invoice = show_invoice(found.code, bought.invoice, list(lines))
        return schemas.ToppedUp(
            message=bought.message,
            organization=found.code,
            credits=bought.credits,
            price_minor=bought.price.minor,
            currency=bought.price.currency.code,
            balance=bought.balance,
            invoice=invoice,
        )


def _consumed(organization: str, used: Used) -> schemas.Consumed:
    return schemas.Consumed(
        organization=organization,
        feature=used.feature,
        agent=used.agent,
        quantity=used.uses,
        credits=used.credits,
        balance=used.balance,
        at=used.at,
        duplicate=used.duplicate,
    )


@router.post("/credits/consume", operation_id="credits.consume")
def consume(body: schemas.ConsumeIn, api: ApiDep, caller: CallerDep) -> schemas.Consumed:
    """Use an AI feature (CRD-1, CRD-3): its credits at the platform's rate, taken at once;
    409 `credits_exhausted` when the balance cannot cover them (nothing taken); the
    check's other rules first. A use id taken before takes nothing (`duplicate`).
    Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        used = consume_by_code(
            b, body.organization, body.feature, body.id, uses=body.quantity, agent=body.agent
        )
        return _consumed(body.organization, used)


@router.post("/credits/consume/batch", operation_id="credits.consume_batch")
def consume_many(
    body: schemas.ConsumeBatchIn, api: ApiDep, caller: CallerDep
) -> schemas.ConsumedBatch:
    """Up to 1,000 uses of AI features in one transaction (CRD-1, CRD-3), each accepted or
    refused on its own as `POST /credits/consume` would answer it if they came one after
    the other in this order; a refused one takes nothing. One gate per organization.
    Platform API key only."""
    caller.require_platform()
    uses = [Use(u.organization, u.feature, u.id, u.quantity, u.agent) for u in body.uses]
    with api.billing(caller) as b:
        outcomes = consume_batch(b, uses)
    results = []
    for index, outcome in enumerate(outcomes):
        use, used, refused = outcome.use, outcome.used, outcome.refused
        results.append(
            schemas.ConsumeOutcome(
                index=index, id=use.use_id, organization=use.organization,
                accepted=used is not None,
                consumed=None if used is None else _consumed(use.organization, used),
                code=None if refused is None else refused.code,
                message=None if refused is None else refused.message,
            )
        )  # fmt: skip
    duplicates = sum(1 for o in outcomes if o.used is not None and o.used.duplicate)
    refused_count = sum(1 for o in outcomes if o.used is None)
    return schemas.ConsumedBatch(
        accepted=len(outcomes) - duplicates - refused_count,
        duplicates=duplicates,
        refused=refused_count,
        results=results,
    )


@router.post("/credits/grants", operation_id="credits.grant")
def grant(body: schemas.GrantIn, api: ApiDep, caller: CallerDep) -> schemas.Granted:
    """Give credits (CRD-2): an adjustment with an optional priority (lower is used
    first) and expiry, no invoice; once per `id`. Platform API key only."""
    caller.require_platform()
    with api.billing(caller) as b:
        found = organization_for(b, caller, body.organization)
        made = credit_purchases.grant_adjustment(
            b, found, body.credits, body.id, priority=body.priority,
            expires_at=body.expires_at,
            description=body.description or "Credits from the platform",
        )  # fmt: skip
        return schemas.Granted(
            organization=found.code,
            grant=_grant(made.grant),
            balance=made.balance,
            duplicate=made.duplicate,
        )
