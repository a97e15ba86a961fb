"""The billing tab's form posts (PRT-1, PRT-2): each is the API's own call.

Every action checks its input with the API's request body and calls the same service,
with the same access checks (services/access.py), that the HTTP API runs for
POST /v1/..., with the member's portal session as the caller, so roles (ACL-1),
organization scoping (ACL-3) and every rule are the API's. A post must come from this
origin and from a member who has the billing tab (ACL-2).

Success: 303 back to the card, with the service's message ("Slots added successfully.",
"Request received", ...) shown there once. Refusal (InvalidInput, Refused, Forbidden,
NotFound): the page again, with the service's message next to the control (role=alert)
and the answer's status (400, 403, 404 or 409); the service changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from tabkeeper.api import schemas_addons, schemas_billing, schemas_credits
from tabkeeper.api.context import Api, get_api
from tabkeeper.api.schemas_billing import ChangeStatus
from tabkeeper.db.tables import Organization, Subscription
from tabkeeper.domain.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Refused,
    TabkeeperError,
)
from tabkeeper.domain.slots import slot_quantity
from tabkeeper.portal import slots, views
from tabkeeper.portal.collected import saved_flash
from tabkeeper.portal.pages import (
    billing_response,
    card_form_of,
    hidden_page,
    payment_context,
    slots_page,
)
from tabkeeper.portal.pages import subpage as render_subpage
from tabkeeper.portal.web import (
    Flash,
    PortalRoute,
    back,
    caller_of,
    require_same_origin,
    status_of,
)
from tabkeeper.services import (
    addons,
    changes,
    checkout,
    credit_purchases,
    payments,
    session_starts,
    subscriptions,
)
from tabkeeper.services.access import Caller, organization_for, owned
from tabkeeper.services.context import Billing, UnitOfWork
from tabkeeper.services.subscriptions import subscription_of

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

REFUSALS = (InvalidInput, Refused, Forbidden, NotFound, IllegalTransition)
FormText = Annotated[str, Form(max_length=200)]
OptionalText = Annotated[str, Form(max_length=200)]
Outcome = Flash | Response
Act = Callable[[Api, Caller, views.Viewer], Outcome]
ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

CHOOSE_TIMING = (
    "Choose when the change applies: Immediately, End of the current period or On custom date."
)
CHOOSE_DATE = "Choose the date the change starts on, such as 2026-03-01."


def _body(model: type[ModelT], **values: Any) -> ModelT:
    """An API request body; a value it refuses is InvalidInput, as the API's 422 says."""
    try:
        return model(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}") from None


def _member(request: Request) -> tuple[Api, Caller, views.Viewer]:
    require_same_origin(request)
    api = get_api(request)
    caller = caller_of(request, api)
    with api.billing(caller) as b:
        viewer = views.viewer_of(b, caller)
    return api, caller, viewer


def _act(
    request: Request,
    area: str,
    do: Act,
    values: dict[str, Any] | None = None,
    refused: Callable[[Api, TabkeeperError], Response] | None = None,
) -> Response:
    """Run one action: 303 with its message, or the page again with the refusal."""
    try:
        api, caller, viewer = _member(request)
    except views.BillingHidden as hidden:
        return hidden_page(hidden)
    try:
        outcome = do(api, caller, viewer)
    except REFUSALS as error:
        if refused is not None:
            return refused(api, error)
        flash = Flash(area, error.message, True)
        return billing_response(api, caller, flash, status_of(error), values)
    if isinstance(outcome, Flash):
        return back(request, outcome, f"/portal/#{outcome.area}")
    return outcome


def _subscription_id(api: Api, caller: Caller, viewer: views.Viewer) -> int:
    with api.billing(caller) as b:
        row = subscription_of(b, viewer.organization, lock=False)
        if row is None:
            raise Refused("This organization has no subscription.", code="no_subscription")
        return row.id


def _on_subscription(
    api: Api, caller: Caller, viewer: views.Viewer, act: Callable[[Billing, Organization], T]
) -> T:
    """`act` on the organization billed for the viewer's subscription, in one transaction,
    with the API's checks: billing rights (ACL-1), the subscription seen (ACL-3)."""
    subscription_id = _subscription_id(api, caller, viewer)
    caller.require_billing()
    with api.billing(caller) as b:
        _, organization = owned(b, caller, Subscription, subscription_id, "subscription")
        return act(b, organization)


def _work(api: Api, caller: Caller) -> UnitOfWork:
    return partial(api.billing, caller)


def _plan_name(api: Api, caller: Caller, plan: str) -> str:
    with api.billing(caller) as b:
        found = b.current_catalog()[1].plans.get(plan)
        return plan if found is None else found.name


# -- plans ----------------------------------------------------------------------------------


@router.post("/plans/{plan}/subscribe")
def subscribe(request: Request, plan: str) -> Response:
    """SUB-3: to the provider's hosted checkout; it sends the member back to the tab."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        base = str(request.base_url).rstrip("/")
        return_url = f"{base}/portal/?checkout={checkout.CHECKOUT_ID}"
        body = _body(
            schemas_billing.SubscribeIn,
            organization=viewer.organization.code,
            plan=plan,
            return_url=return_url,
        )
        opened = checkout.open_checkout(
            _work(api, caller),
            api.provider,
            caller,
            body.organization,
            body.plan,
            body.addons,
            body.return_url,
            api.settings.public_url,
        )
        if opened.subscription_id is not None or opened.url is None:
            return Flash("subscription", f"Your {_plan_name(api, caller, plan)} plan has started.")
        url, public = opened.url, api.settings.public_url.rstrip("/")
        if url.startswith(public + "/"):
            url = url[len(public) :]  # this server's page, on the host the member uses
        return RedirectResponse(url, status_code=303)

    return _act(request, "plans", do)


@router.post("/plans/{plan}/demo")
def book_demo(request: Request, plan: str) -> Response:
    """CAT-2: "Book a demo" → "Request received"."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(
            schemas_billing.DemoRequestIn, organization=viewer.organization.code, plan=plan
        )
        caller.require_billing()
        with api.billing(caller) as b:
            organization = organization_for(b, caller, body.organization)
            message = subscriptions.request_demo(b, organization, body.plan, caller.member)
        return Flash("plans", message)

    return _act(request, "plans", do)


def when_of(when: str, day: str) -> str:
    """The form's timing (SUB-4) as the API's `when`: a custom date starts at 00:00 UTC."""
    if when in ("immediately", "period_end"):
        return when
    if when != "date":
        raise InvalidInput(CHOOSE_TIMING, code="invalid_timing")
    try:
        chosen = date.fromisoformat(day.strip())
    except ValueError:
        raise InvalidInput(CHOOSE_DATE, code="invalid_timing") from None
    return f"{chosen.isoformat()}T00:00:00Z"


@router.post("/plans/{plan}/change")
def change_plan(
    request: Request, plan: str, when: OptionalText = "", date: OptionalText = ""
) -> Response:
    """SUB-4: Immediately, End of the current period or On custom date."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(schemas_billing.ChangeIn, plan=plan, when=when_of(when, date))
        timing = changes.parse_when(body.when)

        def change_plan(
            b: Billing, organization: Organization
        ) -> tuple[ChangeStatus, datetime | None]:
            change = changes.change_plan(b, organization, body.plan, timing, caller.member)
            return ChangeStatus(change.status), change.effective_at

        status, starts_at = _on_subscription(api, caller, viewer, change_plan)
        name = _plan_name(api, caller, plan)
        if status is ChangeStatus.AWAITING_APPROVAL:
            return Flash("upcoming", f"Your change to {name} waits for approval.")
        if status is ChangeStatus.SCHEDULED and starts_at:
            return Flash("upcoming", f"{name} starts on {starts_at:%Y-%m-%d}.")
        return Flash("subscription", f"Your subscription was updated: you are now on {name}.")

    return _act(request, "plans", do)


@router.post("/upcoming/cancel")
def cancel_scheduled_change(request: Request) -> Response:
    """SUB-4: "Cancel scheduled plan"."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        _on_subscription(api, caller, viewer, changes.cancel_scheduled_change)
        return Flash("subscription", "The scheduled plan change was canceled.")

    return _act(request, "subscription", do)


# -- the subscription -----------------------------------------------------------------------


@router.post("/cancel")
def cancel(request: Request) -> Response:
    """SUB-7: canceled at the period's end; usable until then."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        row = _on_subscription(api, caller, viewer, subscriptions.cancel)
        ends_at = row.period_end if row.cancel_at_period_end else None
        until = f"{ends_at:%Y-%m-%d}" if ends_at else "the end of the period"
        return Flash(
            "subscription", f"Your subscription is canceled. It stays usable until {until}."
        )

    return _act(request, "subscription", do)


@router.post("/resume")
def resume(request: Request) -> Response:
    """SUB-7: the cancellation undone before the period ends."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        _on_subscription(api, caller, viewer, subscriptions.resume)
        return Flash("subscription", "Your subscription is resumed.")

    return _act(request, "subscription", do)


# -- the session limit ----------------------------------------------------------------------


def limit_value(text: str) -> object:
    """The Session limit field as a number when it is a whole one, else the text itself:
    the service refuses anything but a whole number greater than zero, with its message."""
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    if digits.isdigit() and len(digits) <= 12:
        return int(stripped)
    return stripped


@router.post("/limit")
def set_limit(request: Request, limit: OptionalText = "") -> Response:
    """LIM-4: a whole number greater than zero, on a paid plan."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        caller.require_billing()
        with api.billing(caller) as b:
            value = session_starts.set_session_limit(b, viewer.organization, limit_value(limit))
        return Flash("limit", f"Session limit set to {value:,} sessions.")

    return _act(request, "limit", do, values={"limit": limit})


@router.post("/limit/reset")
def reset_limit(request: Request) -> Response:
    """LIM-4 "Reset limit": back to the plan's base limit."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        caller.require_billing()
        with api.billing(caller) as b:
            session_starts.reset_session_limit(b, viewer.organization)
        return Flash("limit", "Session limit reset to the plan's base limit.")

    return _act(request, "limit", do)


# -- add-on slots ---------------------------------------------------------------------------


def _slots(request: Request, verb: str, addon: str, quantity: str) -> Response:
    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(
            schemas_addons.SlotsIn,
            organization=viewer.organization.code,
            addon=addon,
            quantity=slot_quantity(slots.parse_quantity(quantity)),
        )
        change = addons.add_slots if verb == "add" else addons.remove_slots
        with api.billing(caller) as b:
            organization = organization_for(b, caller, body.organization)
            caller.require_owner()
            changed = change(b, organization, body.addon, body.quantity, caller.member)
        return Flash("addons", changed.message)

    def refused(api: Api, error: TabkeeperError) -> Response:
        return slots_page(request, verb, addon, quantity, status_of(error), error.message)

    return _act(request, "addons", do, refused=refused)


@router.post("/addons/{addon}/add")
def add_slots(request: Request, addon: str, quantity: OptionalText = "") -> Response:
    """ADD-2: charged pro rata at once; "Slots added successfully."."""
    return _slots(request, "add", addon, quantity)


@router.post("/addons/{addon}/remove")
def remove_slots(request: Request, addon: str, quantity: OptionalText = "") -> Response:
    """ADD-3: from the next billing date; refused below what is in use."""
    return _slots(request, "remove", addon, quantity)


# -- payment method -------------------------------------------------------------------------


@router.post("/payment_method")
def add_payment_method(request: Request, card: FormText = "") -> Response:
    """PAY-2: the new card becomes the default; a declined card saves nothing. SUB-12:
    the open invoices are collected with it at once."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        body = _body(
            schemas_billing.PaymentMethodIn, organization=viewer.organization.code, card=card
        )
        _, method, done = payments.add_payment_method(
            _work(api, caller), api.provider, caller, body.organization, body.card
        )
        return saved_flash(f"{method.brand.capitalize()} ending in {method.last4}", done)

    def refused(api: Api, error: TabkeeperError) -> Response:
        hosted = card_form_of(api, caller_of(request, api))  # PAY-4: a new SetupIntent
        return render_subpage(
            request,
            "payment_method.html",
            "Payment method",
            payment_context(api, hosted),
            status_of(error),
            error.message,
        )

    return _act(request, "payment", do, refused=refused)


# -- AI credits -----------------------------------------------------------------------------


@router.post("/credits/top_up")
def top_up(request: Request, credits: OptionalText = "") -> Response:
    """CRD-1: buy credits at the catalog's price; invoiced at once."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        count = limit_value(credits)
        if not isinstance(count, int) or count < 1:
            raise InvalidInput("Enter how many credits to buy: a whole number greater than zero.")
        body = _body(schemas_credits.TopUpIn, organization=viewer.organization.code, credits=count)
        with api.billing(caller) as b:
            organization = organization_for(b, caller, body.organization)
            caller.require_billing()
            bought = credit_purchases.top_up(b, organization, body.credits, None, caller.member)
        return Flash("credits", bought.message)

    return _act(request, "credits", do, values={"credits": credits})
