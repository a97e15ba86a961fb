"""The plumbing of the billing tab's pages (PRT-2, ACL-1..3): the member's session cookie,
flash messages, the same-origin check of form posts, templates and error pages.

- Session: `/portal/enter?token=<portal session token>` checks the token
  (services.access.caller_for_session) and keeps it in an HttpOnly, SameSite=Strict
  cookie; every page authenticates from that cookie, so an expired or forged token is a
  401 page. Strict keeps cross-site form posts from carrying the session (CSRF); a
  member who arrives by a link from another site gets the Strict cookie withheld on that
  first navigation, so a Lax marker cookie tells /portal/ to reload itself once, which a
  same-site navigation does with the cookie.
- Form posts (every POST under /portal) must come from this origin, by the Origin header
  (or, without one, the Referer): scheme, host and port equal to this request's or to
  TABKEEPER_PUBLIC_URL's; a post that names neither is refused (403). Each also carries
  the session's CSRF token (a hidden `csrf_token` field that `csrf_field()` writes into
  every form): the SHA-256 of the session cookie, so nothing is stored and a page of
  another site can neither read nor make it.
- Security headers on every answer under /portal (`PortalHeaders`): no framing
  (X-Frame-Options DENY, CSP frame-ancestors 'none'), `Cache-Control: no-store` (the
  tab's own static files excepted), nosniff, `Referrer-Policy: same-origin`.
- Flash: after a successful post, a 303 back to the page with a one-time cookie that
  names the card (`area`) the message belongs next to.
- Errors escaping a page (TabkeeperError) become an HTML page with the matching status;
  never a stack trace (DESIGN.md rule 8).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    env.globals.update(csrf_field=csrf_field, csrf_value=csrf_value)
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
            token = request.cookies.get(SESSION_COOKIE)
            _CSRF.set(csrf_token(token) if token else None)
            try:
                if request.method == "POST":
                    await require_form_from_tab(request)
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


def forget_session(response: Response) -> None:
    """Log out in this browser: the session cookies go, and this page has no session."""
    _CSRF.set(None)
    for name in (SESSION_COOKIE, ENTERED_COOKIE, FLASH_COOKIE):
        response.delete_cookie(name, path=COOKIE_PATH)


def withheld_session(request: Request) -> bool:
    """The member entered, but this cross-site navigation came without the Strict cookie."""
    return (
        SESSION_COOKIE not in request.cookies
        and ENTERED_COOKIE in request.cookies
        and "reloaded" not in request.query_params
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def require_same_origin(request: Request) -> None:
    """A form post from another site is refused (SameSite=Strict also withholds the
    session from it): its Origin (or, without one, its Referer) must be this request's
    own origin, scheme included, or TABKEEPER_PUBLIC_URL's; a post with neither is
    refused too."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        raise Forbidden(FOREIGN_FORM)
    host = request.headers.get("host", "")
    allowed = {f"{request.url.scheme}://{host}".lower()}
    allowed.add(_origin(get_api(request).settings.public_url))
    if _origin(sent) not in allowed:
        raise Forbidden(FOREIGN_FORM)


FOREIGN_FORM = "This form was not sent from the billing tab."
CSRF_FIELD = "csrf_token"
_CSRF: ContextVar[str | None] = ContextVar("portal_csrf", default=None)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a portal session: derived from the session cookie (HttpOnly),
    which it does not reveal."""
    digest = hashlib.sha256(b"tabkeeper-portal-csrf\0" + session_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_value() -> str:
    """This request's CSRF token ("" without a session)."""
    return _CSRF.get() or ""


def csrf_field() -> Markup:
    """The hidden field every form of the tab carries."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_value())


async def require_form_from_tab(request: Request) -> None:
    """Every POST under /portal: from this origin, with the session's CSRF token."""
    require_same_origin(request)
    expected = _CSRF.get()
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if expected is None or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise Forbidden("This form has expired or was not sent from the billing tab; reload it.")


SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
)


class PortalHeaders:
    """Security headers on every answer under /portal (and `Cache-Control: no-store`,
    except the tab's own static files): the tab is never framed, cached or sniffed, and
    never sends its URL (a token in /portal/enter) to another site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(COOKIE_PATH):
            await self.app(scope, receive, send)
            return
        static = path.startswith(f"{COOKIE_PATH}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


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
