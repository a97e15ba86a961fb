"""The plumbing of the billing tab's pages (PRT-2, ACL-1..3): the member's session cookie,
flash messages, the same-origin check of form posts, templates and error pages.

- Session: `/portal/enter?token=<portal session token>` checks the token
  (services.access.caller_for_session) and keeps it in an HttpOnly, SameSite=Strict
  cookie; every page authenticates from that cookie, so an expired or forged token is a
  401 page. Strict keeps cross-site form posts from carrying the session (CSRF); a
  member who arrives by a link from another site gets the Strict cookie withheld on that
  first navigation, so a Lax marker cookie tells /portal/ to reload itself once, which a
  same-site navigation does with the cookie.
- Form posts must come from this origin (the Origin header, when a browser sends one).
- Flash: after a successful post, a 303 back to the page with a one-time cookie that
  names the card (`area`) the message belongs next to.
- Errors escaping a page (TabkeeperError) become an HTML page with the matching status;
  never a stack trace (DESIGN.md rule 8).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tabkeeper.api.context import Api, get_api
from tabkeeper.db.engine import transaction
from tabkeeper.domain.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Refused,
    TabkeeperError,
    Unauthorized,
)
from tabkeeper.domain.money import Currency, Money
from tabkeeper.services.access import Caller, caller_for_session

SESSION_COOKIE = "tk_portal"
ENTERED_COOKIE = "tk_portal_entered"
FLASH_COOKIE = "tk_portal_flash"
COOKIE_PATH = "/portal"
HTMX_VERSION = "2.0.11"

NO_SESSION = "Open the billing tab from your account to start a billing session."
ERROR_TITLES = {
    400: "Please check your input",
    401: "Your billing session has ended",
    403: "Not available",
    404: "Not found",
    409: "That could not be done",
}


@dataclass(frozen=True, slots=True)
class Flash:
    """A one-time message shown next to a card: `area` names the card."""

    area: str
    text: str
    error: bool = False


# -- templates ------------------------------------------------------------------------------


def money(value: Money | None) -> str:
    return "" if value is None else str(value)


def money_minor(minor: int, currency: str) -> str:
    return str(Money(minor, Currency.of(currency)))


def day(moment: datetime | None) -> str:
    """A date as members read it: "2026-02-01"."""
    return "" if moment is None else moment.strftime("%Y-%m-%d")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tabkeeper.portal", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, money_minor=money_minor, day=day)
    env.globals["htmx_version"] = HTMX_VERSION
    return env


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("flash", None)
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)


def status_of(error: TabkeeperError) -> int:
    for kind, status in (
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (InvalidInput, 400),
        (IllegalTransition, 409),
        (Refused, 409),
    ):
        if isinstance(error, kind):
            return status
    return 500


def error_page(error: TabkeeperError) -> HTMLResponse:
    status = status_of(error)
    message = NO_SESSION if isinstance(error, Unauthorized) else error.message
    title = ERROR_TITLES.get(status, "Something went wrong")
    return render("error.html", status, title=title, message=message, caller=None)


class PortalRoute(APIRoute):
    """A route whose TabkeeperErrors become HTML error pages, not problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except TabkeeperError as error:
                return error_page(error)

        return guarded


# -- the member's session -------------------------------------------------------------------


def caller_of(request: Request, api: Api | None = None) -> Caller:
    """The member of the session cookie; Unauthorized without a valid one."""
    api = api or get_api(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized(NO_SESSION)
    with transaction(api.engine) as session:
        return caller_for_session(session, token, api.clock.now())


def start_session(request: Request, token: str) -> Caller:
    """Check a portal session token (401 when forged or expired) before keeping it."""
    api = get_api(request)
    with transaction(api.engine) as session:
        return caller_for_session(session, token, api.clock.now())


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def keep_session(request: Request, response: Response, token: str) -> None:
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )
    response.set_cookie(
        ENTERED_COOKIE, "1", path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure
    )


def withheld_session(request: Request) -> bool:
    """The member entered, but this cross-site navigation came without the Strict cookie."""
    return (
        SESSION_COOKIE not in request.cookies
        and ENTERED_COOKIE in request.cookies
        and "reloaded" not in request.query_params
    )


def require_same_origin(request: Request) -> None:
    """A form post from another site is refused (SameSite=Strict also withholds the
    session from it); a post without an Origin header (not a browser) passes."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("This form was not sent from the billing tab.")


# -- flash messages -------------------------------------------------------------------------


def back(request: Request, flash: Flash | None, to: str = "/portal/") -> RedirectResponse:
    """303 to `to`, with `flash` to show there once."""
    response = RedirectResponse(to, status_code=303)
    if flash is not None:
        data = json.dumps({"a": flash.area, "t": flash.text, "e": flash.error}).encode()
        response.set_cookie(
            FLASH_COOKIE,
            base64.urlsafe_b64encode(data).decode("ascii"),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


def take_flash(request: Request) -> Flash | None:
    """The flash the last post left, if any (it is cleared by `clear_flash`)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data: Mapping[str, object] = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
        area, text, error = data["a"], data["t"], data["e"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        return None
    if not isinstance(area, str) or not isinstance(text, str) or not isinstance(error, bool):
        return None
    return Flash(area[:40], text[:500], error)


def clear_flash(request: Request, response: Response) -> Response:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response
