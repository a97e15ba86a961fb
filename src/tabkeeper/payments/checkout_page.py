"""The sandbox provider's hosted checkout page (PAY-1, SUB-3), outside /v1.

No login: the checkout id in the URL is the capability (as with a hosted checkout of a
real provider). GET shows the amount and a form to pay with a test card, or the outcome
once there is one. POST pays: `provider.complete_checkout` (no transaction open), then
`complete_subscription` in one transaction, which starts the subscription and records the
paid first invoice; then a 303 to the checkout's `return_url` (`{CHECKOUT_ID}` in it
replaced), which by default is this page, now showing "Payment received". A declined
card shows "Your card was declined." and starts nothing. Paying a finished checkout
again changes nothing and gives the same answer.

Only with the sandbox provider; with any other the page does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from tabkeeper.api.context import Api, get_api
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import CheckoutSession, Organization
from tabkeeper.domain.errors import IllegalTransition, Refused
from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments import checkout_html as html
from tabkeeper.payments import sandbox_store
from tabkeeper.payments.provider import (
    CARD_DECLINED,
    CARD_DECLINED_MESSAGE,
    CardDeclined,
    CardOnFile,
    ChargeResult,
    CheckoutStatus,
    UnknownCard,
)
from tabkeeper.payments.sandbox import SandboxProvider, checkout_url
from tabkeeper.services.checkout import CHECKOUT_ID
from tabkeeper.services.context import billing_for
from tabkeeper.services.subscriptions import complete_subscription

router = APIRouter(prefix="/sandbox/checkout", tags=["sandbox"], include_in_schema=False)

CardField = Annotated[str, Form(max_length=64, description="A sandbox test card.")]


@dataclass(frozen=True, slots=True)
class Found:
    """A checkout of this server: what the page shows, and where it stands here."""

    view: html.CheckoutView
    platform_id: int
    status: str
    """Of the checkout session here: open | completed | declined | expired."""
    return_url: str
    amount: Money


def _find(api: Api, checkout_id: str) -> Found | None:
    """The checkout `checkout_id` made through POST /v1/subscriptions, or None."""
    if not isinstance(api.provider, SandboxProvider) or len(checkout_id) > sandbox_store.ID_LENGTH:
        return None
    with transaction(api.engine) as session:
        row = session.scalars(
            select(CheckoutSession).where(CheckoutSession.provider_checkout_id == checkout_id)
        ).first()
        kept = sandbox_store.checkout(session, checkout_id)
        if row is None or kept is None:
            return None
        organization = session.get(Organization, row.organization_id)
        assert organization is not None
        b = billing_for(session, organization.platform_id, api.clock.now(), api.store)
        plan = b.catalog_of(row.catalog_version_id).plan(row.plan_code)
        amount = Money(kept.amount_minor, Currency.of(kept.currency))
        return_url = kept.return_url.replace(CHECKOUT_ID, checkout_id)
        own_page = return_url.endswith(checkout_url(checkout_id))
        view = html.CheckoutView(
            checkout_id,
            plan.name,
            organization.name,
            str(amount),
            None if own_page else return_url,
        )
        return Found(view, organization.platform_id, row.status, return_url, amount)


def _page(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code)


NOT_FOUND = ("No such checkout", "This checkout does not exist. Start again from the billing tab.")
EXPIRED = ("This checkout has expired", "Start a new checkout to subscribe.")
CREDITED = (
    "Payment received as account credit",
    "This organization was already subscribed, so the payment was kept as account credit "
    "and will pay the next invoices.",
)


@router.get("/{checkout_id}", response_class=HTMLResponse)
def show_checkout(checkout_id: str, request: Request) -> HTMLResponse:
    api = get_api(request)
    found = _find(api, checkout_id)
    if found is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    if found.status == "completed":
        return _page(html.paid(found.view))
    if found.status == "credited":
        return _page(html.problem_page(*CREDITED))
    if found.status == "declined":
        return _page(html.declined(found.view))
    if api.provider.checkout(checkout_id).status is CheckoutStatus.EXPIRED:
        return _page(html.problem_page(*EXPIRED), 410)
    return _page(html.payment_form(found.view))


@router.post("/{checkout_id}", response_class=HTMLResponse)
def pay(checkout_id: str, request: Request, card: CardField) -> Response:
    api = get_api(request)
    found = _find(api, checkout_id)
    if found is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    card_on_file: CardOnFile | None
    try:
        card_on_file, result = api.provider.complete_checkout(checkout_id, card)
    except CardDeclined:
        card_on_file = None
        result = ChargeResult(False, "", found.amount, CARD_DECLINED, CARD_DECLINED_MESSAGE)
    except UnknownCard as error:
        return _page(html.payment_form(found.view, error.message), 400)
    except Refused as error:
        if error.code == "checkout_expired":
            return _page(html.problem_page(*EXPIRED), 410)
        raise
    try:
        with transaction(api.engine) as session:
            b = billing_for(session, found.platform_id, api.clock.now(), api.store)
            row = session.scalars(
                select(CheckoutSession)
                .where(CheckoutSession.provider_checkout_id == checkout_id)
                .with_for_update()
            ).one()
            started = complete_subscription(b, row, card_on_file, result)
    except (Refused, IllegalTransition) as error:  # e.g. subscribed meanwhile by another checkout
        return _page(html.problem_page("The subscription could not start", error.message), 409)
    if started is None:
        return _page(html.declined(found.view, result.failure_message or CARD_DECLINED_MESSAGE))
    if row.status == "credited":
        return _page(html.problem_page(*CREDITED), 409)
    return RedirectResponse(found.return_url, status_code=303)
