"""Payment methods (PAY-1, PAY-2): see the cards on file, add one (it becomes the default).

A card is attached through the payment provider with no transaction open (the provider
is a remote system), then saved as the organization's default in its own transaction.
The answer shows brand, last 4 and expiry, never a card number. A declined card is a
409 `card_declined`; a card the provider does not know (the sandbox: not one of its test
cards) a 400 `unknown_card`; nothing is saved in either case.

Cards belong to the organization that is billed (SUB-2): a sub-account has none.
Owner, billing admin or the platform's key (ACL-1); another organization's cards 404.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.db.tables import PaymentMethod
from tabkeeper.services import payments as service
from tabkeeper.services.access import OrganizationCodes, scoped

router = APIRouter(tags=["payments"])


def show_method(organization: str, row: PaymentMethod) -> schemas.PaymentMethod:
    return schemas.PaymentMethod(
        id=row.id,
        organization=organization,
        provider=row.provider,
        brand=row.brand,
        last4=row.last4,
        exp_month=row.exp_month,
        exp_year=row.exp_year,
        default=row.is_default,
        created_at=row.created_at,
    )


@router.get("/payment_methods")
def list_payment_methods(
    api: ApiDep,
    caller: CallerDep,
    organization: str | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[schemas.PaymentMethod]:
    """The cards saved, oldest first; `default` marks the one charged (PAY-2)."""
    caller.require_billing()
    with api.reading(caller) as b:
        query = scoped(
            b, caller, select(PaymentMethod), PaymentMethod.organization_id, organization
        )
        codes = OrganizationCodes(b.session)
        return page(
            b.session,
            query,
            PaymentMethod.id,
            limit,
            cursor,
            lambda row: show_method(codes(row.organization_id), row),
        )


@router.post("/payment_methods", status_code=status.HTTP_201_CREATED)
def add_payment_method(
    body: schemas.PaymentMethodIn, api: ApiDep, caller: CallerDep
) -> schemas.PaymentMethod:
    """Add a card (PAY-2); it becomes the default that later invoices are charged to."""
    code, method = service.add_payment_method(
        partial(api.billing, caller), api.provider, caller, body.organization, body.card
    )
    return show_method(code, method)
