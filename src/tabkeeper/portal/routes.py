"""The billing tab's pages (PRT-1, PRT-2, ACL-2): GET routes under /portal.

- `/portal/enter?token=...`: the entry of a portal session URL; keeps the token in the
  session cookie and sends the member (303) to `/portal/`; the URL that
  POST /v1/portal_sessions answers. When this browser is in another member's (or another
  organization's) session already, it asks first (`switch.html`, a form that posts the
  token to `POST /portal/enter`): a link never switches a session silently.
- `POST /portal/logout`: ends the member's portal sessions (every token made until now;
  services.access.end_portal_sessions) and clears the cookies.
- `/portal/`: the billing tab: every card of PRT-1 (views.py). After a hosted checkout
  the provider sends the member back to `/portal/?checkout=<id>`, which says how it went.
- Confirmation pages, the no-script fallback of each dialog: `/portal/plans/{plan}/change`
  ("Apply subscription updates"), `/portal/upcoming/cancel` ("Cancel scheduled plan"),
  `/portal/cancel`; the Add Slots and Remove Slots pages `/portal/addons/{addon}/add|remove`
  (htmx refreshes their totals as the quantity changes); `/portal/payment_method`, where
  "Manage" leads (the sandbox's card form, or Stripe's card field with Stripe);
  `/portal/invoices/{id}.pdf` (INV-3); `/portal/credit_notes/{id}.pdf` (INV-5).

Members without billing rights, and everyone where the platform turned billing off, get
a page without billing data and without the Billing tab (ACL-2). The form posts are in
actions.py.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from tabkeeper.api.context import get_api
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Organization
from tabkeeper.domain.errors import NotFound, Unauthorized
from tabkeeper.portal import views
from tabkeeper.portal.actions import router as actions_router
from tabkeeper.portal.alerts import router as alerts_router
from tabkeeper.portal.billing_details import router as billing_details_router
from tabkeeper.portal.collect import router as collect_router
from tabkeeper.portal.pages import (
    billing_response,
    cancel_context,
    card_form_of,
    change_context,
    hidden_page,
    payment_context,
    slots_page,
    subpage,
    upcoming_context,
)
from tabkeeper.portal.spend import router as spend_router
from tabkeeper.portal.web import (
    SESSION_COOKIE,
    PortalRoute,
    caller_of,
    clear_flash,
    forget_session,
    keep_session,
    render,
    start_session,
    take_flash,
    withheld_session,
)
from tabkeeper.services.access import Caller, caller_for_session, end_portal_sessions, owned

router = APIRouter(prefix="/portal", route_class=PortalRoute, include_in_schema=False)
TokenQuery = Annotated[str, Query(max_length=2000)]


def _entered(request: Request, token: str) -> Response:
    start_session(request, token)
    response = Response(status_code=303, headers={"location": "/portal/"})
    keep_session(request, response, token)
    return response


STATIC_TYPES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


@cache
def _static(name: str) -> bytes:
    return files("tabkeeper.portal").joinpath("static", name).read_bytes()


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The tab's own assets (htmx vendored, no CDN). Served whole rather than through
    StaticFiles, whose streamed answer the API's NulGuard middleware cuts short (it
    reports a disconnect once the request body is read)."""
    if name not in STATIC_TYPES:
        raise NotFound("No such file.")
    return Response(
        _static(name),
        media_type=STATIC_TYPES[name],
        headers={"cache-control": "public, max-age=3600"},
    )


@router.get("/enter")
def enter(request: Request, token: TokenQuery) -> Response:
    """A portal session URL: a forged or expired token is a 401 page; another session
    of this browser is not switched without asking."""
    current = request.cookies.get(SESSION_COOKIE)
    if current and current != token:
        arriving = start_session(request, token)
        try:
            present: Caller | None = start_session(request, current)
        except Unauthorized:
            present = None  # nothing to lose: the old session has ended
        if present is not None and present != arriving:
            return render(
                "switch.html",
                title="Switch billing session",
                current=_who(request, present),
                arriving=_who(request, arriving),
                token=token,
            )
    return _entered(request, token)


@router.post("/enter")
def enter_confirmed(request: Request, token: Annotated[str, Form(max_length=2000)]) -> Response:
    """ "Switch": the member confirmed the session of the link (CSRF-checked)."""
    return _entered(request, token)


def _who(request: Request, caller: Caller) -> str:
    with transaction(get_api(request).engine) as session:
        organization = session.get(Organization, caller.organization_id)
        name = organization.name if organization is not None else "?"
    return f"{caller.member} of {name}"


@router.post("/logout")
def logout(request: Request) -> Response:
    """Ends this member's portal sessions and clears the cookies."""
    api = get_api(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            with transaction(api.engine) as session:
                caller = caller_for_session(session, token, api.clock.now())
                end_portal_sessions(session, caller)
        except Unauthorized:
            pass  # ended already
        api.callers.forget_all()
    response = render(
        "error.html",
        title="You have logged out",
        message="You have logged out of billing. Open the billing tab from your account "
        "to start again.",
        caller=None,
    )
    forget_session(response)
    return response


@router.get("")
def tab_without_slash() -> Response:
    return Response(status_code=307, headers={"location": "/portal/"})


@router.get("/")
def billing_tab(request: Request, checkout: Annotated[str | None, Query()] = None) -> Response:
    if withheld_session(request):
        return render("reload.html")
    api = get_api(request)
    caller = caller_of(request, api)
    response = billing_response(api, caller, take_flash(request), checkout=checkout)
    return clear_flash(request, response)


@router.get("/plans/{plan}/change")
def change_page(request: Request, plan: str) -> Response:
    """ "Apply subscription updates" without script (SUB-4)."""
    return subpage(
        request,
        "change.html",
        "Apply subscription updates",
        lambda b, v: change_context(b, v, plan),
    )


@router.get("/upcoming/cancel")
def cancel_change_page(request: Request) -> Response:
    """ "Cancel scheduled plan" without script (SUB-4)."""
    return subpage(request, "cancel_change.html", "Cancel scheduled plan", upcoming_context)


@router.get("/cancel")
def cancel_page(request: Request) -> Response:
    """Cancel the subscription at the period's end, confirmed (SUB-7)."""
    return subpage(request, "cancel.html", "Cancel subscription", cancel_context)


@router.get("/payment_method")
def payment_method_page(request: Request) -> Response:
    """ "Manage": the card on file and a form to add one (PAY-2; with Stripe, on
    Stripe.js: PAY-4)."""
    api = get_api(request)
    hosted = card_form_of(api, caller_of(request, api))
    return subpage(request, "payment_method.html", "Payment method", payment_context(api, hosted))


@router.get("/addons/{addon}/add")
def add_slots_page(request: Request, addon: str, quantity: str | None = None) -> Response:
    """ADD-2: price per slot, quantity, new monthly total, due now."""
    return slots_page(request, "add", addon, quantity)


@router.get("/addons/{addon}/remove")
def remove_slots_page(request: Request, addon: str, quantity: str | None = None) -> Response:
    """ADD-3: what is held, what is removed, the capacity and monthly cost after."""
    return slots_page(request, "remove", addon, quantity)


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(request: Request, invoice_id: int) -> Response:
    """INV-3: the invoice as a PDF (tabkeeper.pdf.invoice)."""
    from tabkeeper.pdf.invoice import invoice_pdf as render_pdf

    api = get_api(request)
    caller = caller_of(request, api)
    try:
        with api.billing(caller) as b:
            views.viewer_of(b, caller)
            if not 0 < invoice_id < 2**31:
                raise NotFound("No such invoice.")
            row, _ = owned(b, caller, Invoice, invoice_id, "invoice")
            number = row.number or f"invoice-{row.id}"
            data = render_pdf(b.session, caller.platform_id, invoice_id)
    except views.BillingHidden as hidden:
        return hidden_page(hidden)
    disposition = f'attachment; filename="{number}.pdf"'
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": disposition})  # fmt: skip


@router.get("/credit_notes/{credit_note_id}.pdf")
def credit_note_pdf(request: Request, credit_note_id: int) -> Response:
    """INV-5: a credit note of the organization as a PDF (tabkeeper.pdf.credit_note)."""
    from tabkeeper.pdf.credit_note import caller_credit_note, render_credit_note_pdf

    api = get_api(request)
    caller = caller_of(request, api)
    try:
        with api.billing(caller) as b:
            views.viewer_of(b, caller)
            if not 0 < credit_note_id < 2**31:
                raise NotFound("No such credit note.")
            document = caller_credit_note(b.session, caller, credit_note_id)
    except views.BillingHidden as hidden:
        return hidden_page(hidden)
    disposition = f'attachment; filename="{document.filename}"'
    return Response(render_credit_note_pdf(document), media_type="application/pdf",
                    headers={"content-disposition": disposition})  # fmt: skip


router.include_router(actions_router)
router.include_router(collect_router)  # "Pay now" (SUB-12)
router.include_router(alerts_router)  # usage alerts for any member (LIM-5)
router.include_router(billing_details_router)  # INV-6, INV-7
router.include_router(spend_router)  # the AI spend card's forms (LIM-6, CRD-6, CRD-7)
