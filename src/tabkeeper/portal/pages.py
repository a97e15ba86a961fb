"""Rendering the billing tab's pages (PRT-1, ACL-2): the billing tab itself, the pages of
its dialogs and the Add / Remove Slots pages, each read in one transaction through
views.py. Pages (routes.py) and form posts (actions.py) both render through here, so a
refused post shows the same page with its message next to the control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select

from tabkeeper.api.context import Api, get_api
from tabkeeper.api.subscription_view import show_subscription
from tabkeeper.db.tables import CheckoutSession
from tabkeeper.domain.errors import InvalidInput, Refused
from tabkeeper.payments.choice import HostedCardForm, hosted_card_form, offered_cards
from tabkeeper.portal import slots, views
from tabkeeper.portal.web import Flash, caller_of, render
from tabkeeper.services.access import Caller
from tabkeeper.services.context import Billing
from tabkeeper.services.payment_methods import default_payment_method
from tabkeeper.services.payments import customer_of_id
from tabkeeper.services.subscriptions import subscription_of

Fill = Callable[[Billing, views.Viewer], dict[str, Any]]

CHECKOUT_OUTCOMES = {
    "completed": Flash("subscription", "Payment received: your subscription has started."),
    "declined": Flash("plans", "Your card was declined. Nothing was charged.", True),
    "credited": Flash(
        "subscription", "You were already subscribed, so the payment was kept as account credit."
    ),
}
"""SUB-3: how the hosted checkout the member comes back from went."""


def hidden_page(hidden: views.BillingHidden) -> Response:
    """ACL-2: no Billing tab and no billing data, only why."""
    return render(
        "hidden.html",
        hidden.status_code,
        title="Billing",
        message=hidden.message,
        organization=hidden.organization,
        alerts=hidden.message == views.NO_BILLING_RIGHTS,  # LIM-5: any member
    )


def _checkout_flash(b: Billing, viewer: views.Viewer, checkout: str) -> Flash | None:
    row = b.session.scalars(
        select(CheckoutSession).where(
            CheckoutSession.provider_checkout_id == checkout[:200],
            CheckoutSession.organization_id == viewer.organization.id,
        )
    ).first()
    return None if row is None else CHECKOUT_OUTCOMES.get(row.status)


def billing_response(
    api: Api,
    caller: Caller,
    flash: Flash | None,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    checkout: str | None = None,
) -> Response:
    """The billing tab, with `flash` next to its card (`values`: what a refused form
    sent, shown again)."""
    try:
        with api.billing(caller) as b:
            page = views.billing_page(b, caller)
            if checkout is not None and flash is None:
                flash = _checkout_flash(b, page.viewer, checkout)
    except views.BillingHidden as hidden:
        return hidden_page(hidden)
    return render(
        "billing.html", status_code, title="Billing", page=page, flash=flash, values=values or {}
    )


def subpage(
    request: Request,
    template: str,
    title: str,
    fill: Fill,
    status_code: int = 200,
    error: str | None = None,
    **context: Any,
) -> Response:
    """A page of the tab: `fill(b, viewer)` gives its context; a member without the
    billing tab gets that page instead (ACL-2)."""
    api = get_api(request)
    caller = caller_of(request, api)
    try:
        with api.billing(caller) as b:
            viewer = views.viewer_of(b, caller)
            filled = fill(b, viewer)
    except views.BillingHidden as hidden:
        return hidden_page(hidden)
    filled.setdefault("error", error)
    return render(
        template,
        status_code,
        title=title,
        organization=viewer.organization.name,
        **filled,
        **context,
    )


def change_context(b: Billing, viewer: views.Viewer, plan: str) -> dict[str, Any]:
    """The "Apply subscription updates" form for `plan` (SUB-4)."""
    caller = Caller(b.platform.id, viewer.organization.id, viewer.member, viewer.role)
    page = views.billing_page(b, caller)
    offer = next((o for o in page.plans if o.plan.code == plan and o.action == "change"), None)
    if offer is None or page.subscription is None:
        raise Refused("This plan cannot be chosen now.", code="plan_not_available")
    return {"offer": offer, "current_name": page.subscription.plan_name}


def upcoming_context(b: Billing, viewer: views.Viewer) -> dict[str, Any]:
    """The "Cancel scheduled plan" form (SUB-4)."""
    row = subscription_of(b, viewer.organization, lock=False)
    shown = None if row is None else show_subscription(b, row)
    if shown is None or shown.upcoming is None:
        raise Refused("There is no scheduled plan change to cancel.", code="no_scheduled_change")
    return {"upcoming": shown.upcoming}


def cancel_context(b: Billing, viewer: views.Viewer) -> dict[str, Any]:
    """The cancellation form (SUB-7)."""
    row = subscription_of(b, viewer.organization, lock=False)
    if row is None:
        raise Refused("This organization has no subscription.", code="no_subscription")
    caller = Caller(b.platform.id, viewer.organization.id, viewer.member, viewer.role)
    alternative = views.billing_page(b, caller).alternative  # a cheaper plan (offers.py)
    return {"subscription": show_subscription(b, row), "alternative": alternative}


def payment_context(api: Api, hosted: HostedCardForm | None = None) -> Fill:
    """The card on file and, with the sandbox, its test cards to choose from (PAY-2);
    with Stripe, `hosted`: the Stripe.js card form (PAY-4, made before the transaction)."""

    def fill(b: Billing, viewer: views.Viewer) -> dict[str, Any]:
        cards = offered_cards(api.provider)  # the provider's choice: payments/choice.py
        card = default_payment_method(b, viewer.organization.id)
        return {"card": card, "test_cards": cards, "hosted": hosted}

    return fill


def card_form_of(api: Api, caller: Caller) -> HostedCardForm | None:
    """The Stripe.js card form of the caller's organization (None with the sandbox, or for
    the platform itself); the provider is called here, with no transaction open."""
    if caller.organization_id is None:
        return None
    return hosted_card_form(api.provider, customer_of_id(caller.organization_id))


def slots_page(
    request: Request,
    verb: str,
    addon: str,
    quantity: str | None,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    """The Add Slots (ADD-2) or Remove Slots (ADD-3) page, owner only (ACL-1). htmx asks
    for it as the quantity changes and takes its totals region."""
    amount = slots.parse_quantity(quantity)

    def fill(b: Billing, viewer: views.Viewer) -> dict[str, Any]:
        if not viewer.is_owner:
            raise Refused(views.OWNER_ONLY, code="forbidden")
        row = subscription_of(b, viewer.organization, lock=False)
        if row is None:
            raise Refused("This organization has no subscription.", code="no_subscription")
        found = b.catalog_of(row.catalog_version_id).addon(addon)
        context: dict[str, Any] = {
            "code": found.code,
            "adds": views.adds_text(found),
            "quote": None,
            "preview": None,
            "error": error,
        }
        try:
            if verb == "add":
                context["quote"] = slots.add_preview(b, viewer, found.code, amount)
            else:
                context["preview"] = slots.removal_preview(b, viewer, found.code, amount)
        except (InvalidInput, Refused) as refused:
            context["error"] = error or refused.message
        return context

    title = "Add slots" if verb == "add" else "Remove slots"
    response = subpage(
        request,
        f"slots_{verb}.html",
        title,
        fill,
        status_code,
        verb=verb,
        quantity=amount,
        quantity_label="Quantity" if verb == "add" else "Slots to remove",
        submit_label=title,
    )
    if request.headers.get("hx-request") == "true" and response.status_code >= 400:
        response.status_code = 200  # htmx swaps only successful answers
    return response
