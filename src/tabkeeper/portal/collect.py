"""The billing tab's "Pay now" (SUB-12): form posts that collect at once.

- `POST /portal/pay_now`: the button of the Payment pending banner: every open invoice,
  oldest first, stopping at the first decline (services.collections.pay_now, the API's
  `POST /v1/organizations/{code}/pay_now`).
- `POST /portal/invoices/{id}/pay`: the button of an open invoice's row: that invoice
  (services.collections.pay_invoice, the API's `POST /v1/invoices/{id}/pay`).

Each goes back to the card with what happened: the invoices paid and the subscription's
state, or the decline (role=alert). A refusal (no card, an invoice no longer open) shows
the tab again with the service's message. Saving a card collects too (actions.py,
services.payments.add_payment_method); collected.py words the messages.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tabkeeper.api.context import Api
from tabkeeper.domain.errors import NotFound
from tabkeeper.portal import views
from tabkeeper.portal.actions import Outcome, _act, _work
from tabkeeper.portal.collected import collected_flash
from tabkeeper.portal.web import PortalRoute
from tabkeeper.services import collections
from tabkeeper.services.access import Caller

router = APIRouter(route_class=PortalRoute, include_in_schema=False)


@router.post("/pay_now")
def pay_now(request: Request) -> Response:
    """SUB-12: the banner's "Pay now": the open invoices, oldest first."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        read = partial(api.reading, caller)
        done = collections.pay_now(
            _work(api, caller), api.provider, caller, viewer.organization.code, read
        )
        return collected_flash("subscription", done)

    return _act(request, "subscription", do)


@router.post("/invoices/{invoice_id}/pay")
def pay_invoice(request: Request, invoice_id: int) -> Response:
    """SUB-12: an open invoice's "Pay now"."""

    def do(api: Api, caller: Caller, viewer: views.Viewer) -> Outcome:
        if not 0 < invoice_id < 2**31:
            raise NotFound("No such invoice.")
        read = partial(api.reading, caller)
        done = collections.pay_invoice(_work(api, caller), api.provider, caller, invoice_id, read)
        return collected_flash("invoices", done)

    return _act(request, "invoices", do)
