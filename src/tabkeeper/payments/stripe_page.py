"""The Stripe provider's hosted pages (PAY-4, SUB-3), outside /v1, on Stripe.js.

- `/stripe/checkout/{pi_...}`: the first payment of a subscription. GET shows the amount
  and Stripe's card field; Stripe.js saves the card with a SetupIntent (3-D Secure
  included, in Stripe's own frame), then the form posts the SetupIntent's id; POST charges
  the checkout's PaymentIntent with that card (`complete_checkout_with_setup`, no
  transaction open), then `complete_subscription` in one transaction, and a 303 to the
  checkout's return URL, which by default is this page, now showing "Payment received".
- `/stripe/pay/{pi_...}`: the page a `payment.action_required` notice links to: Stripe.js
  asks the bank to confirm the off-session payment with the member; then the page posts,
  and the payment is settled at once as the `payment_intent.succeeded` webhook would
  (services/provider_events.py; the webhook arriving later changes nothing).

No login: the PaymentIntent's id in the URL is the capability, as with the sandbox's
page; only a PaymentIntent tabkeeper made is shown. Card data never reaches tabkeeper:
Stripe.js takes it. Built on the Card Element with `confirmCardSetup` /
`confirmCardPayment` (what the offline fake Stripe, localstripe, also provides).
With any other provider these pages do not exist (404).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import stripe as stripe_lib
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from tabkeeper.api.context import Api, get_api
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import CheckoutSession, Organization
from tabkeeper.domain.errors import IllegalTransition, InvalidInput, Refused
from tabkeeper.payments import stripe_html as html
from tabkeeper.payments.stripe import AUTHENTICATION_REQUIRED, RETURN_URL_METADATA, StripeProvider
from tabkeeper.services.checkout import CHECKOUT_ID
from tabkeeper.services.context import billing_for
from tabkeeper.services.payments import customer_of
from tabkeeper.services.provider_events import ATTEMPT_METADATA, ProviderEvent, process
from tabkeeper.services.subscriptions import complete_subscription

router = APIRouter(prefix="/stripe", tags=["stripe"], include_in_schema=False)

SetupField = Annotated[
    str, Form(max_length=255, description="The SetupIntent Stripe.js confirmed.")
]
NOT_FOUND = (
    "No such payment",
    "This payment page does not exist. Start again from the billing tab.",
)


def _page(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code)


def _provider(api: Api) -> StripeProvider | None:
    return api.provider if isinstance(api.provider, StripeProvider) else None


def _checkout(api: Api, checkout_id: str) -> tuple[CheckoutSession, html.CheckoutView] | None:
    if len(checkout_id) > 255 or not checkout_id.startswith("pi_"):
        return None
    with transaction(api.engine) as session:
        row = session.scalars(
            select(CheckoutSession).where(
                CheckoutSession.provider_checkout_id == checkout_id,
                CheckoutSession.provider == "stripe",
            )
        ).first()
        if row is None:
            return None
        organization = session.get(Organization, row.organization_id)
        assert organization is not None
        b = billing_for(session, organization.platform_id, api.clock.now(), api.store)
        plan = b.catalog_of(row.catalog_version_id).plan(row.plan_code)
        view = html.CheckoutView(
            checkout_id, plan.name, organization.name, customer_of(organization)
        )
        return row, view


@router.get("/checkout/{checkout_id}", response_class=HTMLResponse)
def show_checkout(checkout_id: str, request: Request) -> HTMLResponse:
    api = get_api(request)
    provider, found = _provider(api), None
    if provider is not None:
        found = _checkout(api, checkout_id)
    if provider is None or found is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    row, view = found
    amount = provider.checkout(checkout_id).amount
    if row.status == "completed":
        return _page(html.paid(view, str(amount)))
    if row.status == "declined":
        return _page(html.declined(view))
    secret = provider.setup_for(view.customer)
    return _page(html.checkout_form(view, str(amount), provider, secret))


@router.post("/checkout/{checkout_id}", response_class=HTMLResponse)
def pay_checkout(checkout_id: str, request: Request, setup_intent: SetupField) -> Response:
    api = get_api(request)
    provider, found = _provider(api), None
    if provider is not None:
        found = _checkout(api, checkout_id)
    if provider is None or found is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    _row, view = found
    try:
        card, result = provider.complete_checkout_with_setup(checkout_id, setup_intent)
    except InvalidInput as error:
        return _page(html.problem_page("The card was not saved", error.message), 400)
    if result.failure_code == AUTHENTICATION_REQUIRED:  # the bank wants the member first
        intent = provider.payment(checkout_id)
        amount = html.amount_of(intent.amount, intent.currency)
        secret = intent.client_secret or ""
        form = html.payment_form(checkout_id, amount, provider, secret, "", setup_intent)
        return _page(form)
    try:
        with transaction(api.engine) as session:
            row = session.scalars(
                select(CheckoutSession)
                .where(CheckoutSession.provider_checkout_id == checkout_id)
                .with_for_update()
            ).one()
            organization = session.get(Organization, row.organization_id)
            assert organization is not None
            b = billing_for(session, organization.platform_id, api.clock.now(), api.store)
            started = complete_subscription(b, row, card, result)
            return_url = row.url
    except (Refused, IllegalTransition) as error:
        return _page(html.problem_page("The subscription could not start", error.message), 409)
    if started is None:
        return _page(html.declined(view, result.failure_message))
    target = _return_url(provider, checkout_id) or return_url
    return RedirectResponse(target, status_code=303)


def _return_url(provider: StripeProvider, checkout_id: str) -> str | None:
    """Where the member goes back to: the return URL given when the checkout opened."""
    found: Any = provider.payment(checkout_id).metadata
    url = found[RETURN_URL_METADATA] if found and RETURN_URL_METADATA in found else None
    return url.replace(CHECKOUT_ID, checkout_id) if isinstance(url, str) else None


@router.get("/pay/{payment_id}", response_class=HTMLResponse)
def show_payment(payment_id: str, request: Request) -> HTMLResponse:
    """The page of `payment.action_required`: confirm an off-session payment (3-D Secure)."""
    api = get_api(request)
    provider = _provider(api)
    intent = _tabkeeper_payment(provider, payment_id)
    if provider is None or intent is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    amount = html.amount_of(intent.amount, intent.currency)
    if intent.status == "succeeded":
        return _page(html.payment_done(amount))
    if intent.status != "requires_action" or intent.client_secret is None:
        return _page(
            html.problem_page("Nothing to confirm", "This payment needs nothing from you.")
        )
    return _page(html.payment_form(payment_id, amount, provider, intent.client_secret))


@router.post("/pay/{payment_id}", response_class=HTMLResponse)
def confirmed_payment(payment_id: str, request: Request) -> HTMLResponse:
    """After Stripe.js: settle the payment at once if Stripe says it succeeded."""
    api = get_api(request)
    provider = _provider(api)
    intent = _tabkeeper_payment(provider, payment_id)
    if provider is None or intent is None:
        return _page(html.problem_page(*NOT_FOUND), 404)
    amount = html.amount_of(intent.amount, intent.currency)
    if intent.status != "succeeded":
        again = "The payment was not confirmed. Try again."
        secret = intent.client_secret or ""
        return _page(html.payment_form(payment_id, amount, provider, secret, again), 409)
    event = ProviderEvent(
        provider=provider.name,
        id=f"confirmed:{payment_id}",  # the webhook's own event is processed too, changing nothing
        type="payment_intent.succeeded",
        created_at=datetime.fromtimestamp(intent.created, UTC),
        object={"id": intent.id, "metadata": {ATTEMPT_METADATA: _attempt_key(intent)}},
    )
    with transaction(api.engine) as session:
        process(session, api.clock.now(), event, api.store)
    return _page(html.payment_done(amount))


def _attempt_key(intent: stripe_lib.PaymentIntent) -> str:
    metadata: Any = intent.metadata
    return str(metadata[ATTEMPT_METADATA]) if metadata and ATTEMPT_METADATA in metadata else ""


def _tabkeeper_payment(
    provider: StripeProvider | None, payment_id: str
) -> stripe_lib.PaymentIntent | None:
    """The PaymentIntent `payment_id` when it is one of tabkeeper's attempts, else None."""
    if provider is None or len(payment_id) > 255 or not payment_id.startswith("pi_"):
        return None
    try:
        intent = provider.payment(payment_id)
    except InvalidInput:
        return None
    return intent if _attempt_key(intent) else None
