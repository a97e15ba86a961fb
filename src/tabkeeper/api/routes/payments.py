"""Payment methods (PAY-1, PAY-2): see the cards on file, add one (it becomes the default);
"Pay now" (SUB-12).

A card is attached through the payment provider with no transaction open (the provider
is a remote system), then saved as the organization's default in its own transaction.
The answer shows brand, last 4 and expiry, never a card number. A declined card is a
409 `card_declined`; a card the provider does not know (the sandbox: not one of its test
cards) a 400 `unknown_card`; nothing is saved in either case.

Cards belong to the organization that is billed (SUB-2): a sub-account has none.

A saved card collects the open invoices at once, oldest first (SUB-12,
services/collections.py); the answer is still the card: `GET /v1/invoices` and the
subscription show what was paid. `POST /v1/organizations/{code}/pay_now` collects them on
demand: 200 with what was paid and what is still open (both empty when nothing was owed);
a decline stops there and answers 409 `payment_failed` with `reason`, the `invoice`
number and the numbers of those `paid` before it; no card on file while something is
open is a 409 `payment_method_required`; a sub-account a 409 `sub_account`.
Owner, billing admin or the platform's key (ACL-1); another organization's cards 404.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, status
from sqlalchemy import select

from tabkeeper.api import schemas_billing as schemas
from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, page
from tabkeeper.api.routes.invoices import show_invoice
from tabkeeper.api.schemas_collections import PayNow
from tabkeeper.db.tables import Invoice, PaymentMethod
from tabkeeper.domain.errors import Refused
from tabkeeper.services import payments as service
from tabkeeper.services.access import OrganizationCodes, scoped
from tabkeeper.services.collections import pay_now as collect_now

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


@router.get("/payment_methods", operation_id="payment_methods.list")
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


@router.post(
    "/payment_methods", operation_id="payment_methods.add", status_code=status.HTTP_201_CREATED
)
def add_payment_method(
    body: schemas.PaymentMethodIn, api: ApiDep, caller: CallerDep
) -> schemas.PaymentMethod:
    """Add a card (PAY-2); it becomes the default that later invoices are charged to."""
    code, method, _ = service.add_payment_method(
        partial(api.billing, caller), api.provider, caller, body.organization, body.card
    )
    return show_method(code, method)


class PayNowFailed(Refused):
    """A charge of "Pay now" failed; `reason` is the provider's code, `invoice` the
    invoice it stopped at, `paid` the numbers of those paid before it."""

    code = "payment_failed"

    def __init__(self, message: str, reason: str, invoice: str, paid: list[str]) -> None:
        super().__init__(message)
        self.problem_fields = {"reason": reason, "invoice": invoice, "paid": paid}


@router.post("/organizations/{code}/pay_now", operation_id="organizations.pay_now")
def pay_now(code: str, api: ApiDep, caller: CallerDep) -> PayNow:
    """SUB-12: collect the organization's open invoices now with the card on file, oldest
    first, stopping at the first decline; once nothing is owed a past_due or suspended
    subscription is active again at once."""
    read = partial(api.reading, caller)
    done = collect_now(partial(api.billing, caller), api.provider, caller, code, read)
    if done.failed is not None:
        (number,) = done.named([done.failed])
        raise PayNowFailed(
            f"Invoice {number} was not paid: {done.failure_message}",
            done.failure_code or "declined",
            number,
            done.named(done.paid),
        )
    with read() as b:
        wanted = [*done.paid, *done.still_open]
        rows = {
            row.id: row for row in b.session.scalars(select(Invoice).where(Invoice.id.in_(wanted)))
        }
        return PayNow(
            organization=done.organization,
            paid=[show_invoice(done.organization, rows[i]) for i in done.paid],
            open=[show_invoice(done.organization, rows[i]) for i in done.still_open],
            subscription_state=done.state,
        )
