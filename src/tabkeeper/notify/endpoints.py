"""Webhook endpoints and deliveries, for the API (NOT-1, NOT-2).

A platform registers endpoints (an http or https URL, optionally a list of notice kinds;
notify/kinds.py), gets each one's signing secret once, when it is made, lists, disables,
enables and deletes them, lists its deliveries (cursor pages by id, oldest first) and
replays one: the delivery goes back to pending, due now, with the same message_id, so a
receiver that has it already can drop it.

Functions take the caller's session and flush, never commit (DESIGN.md). Ids of another
platform are answered as unknown (NotFound), never with its data (ACL-3). They return
frozen views, never rows: the secret stays out of them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabkeeper.db.tables import Notice
from tabkeeper.db.tables_notify import Delivery, WebhookEndpoint
from tabkeeper.domain.errors import InvalidInput, NotFound, Refused
from tabkeeper.domain.utc import require_utc
from tabkeeper.notify.addresses import Unresolved, check_destination
from tabkeeper.notify.kinds import parse_filter, split_filter
from tabkeeper.notify.webhooks import new_secret

STATUSES = ("pending", "sending", "delivered", "failed")
MAX_PAGE = 100
MAX_URL_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    id: int
    url: str
    kinds: tuple[str, ...] | None
    """None: every kind."""
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: int
    notice_id: int
    kind: str
    channel: str
    destination: str
    endpoint_id: int | None
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: tuple[DeliveryInfo, ...]
    next_after_id: int | None
    """Pass as `after_id` for the next page; None when this is the last."""


def not_found(what: str, ident: object) -> NotFound:
    return NotFound(f"unknown {what} {ident!r}")


def check_url(url: object) -> str:
    """An endpoint URL: http or https, with a host, without credentials or spaces."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("url: expected an http or https URL", code="invalid_url")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url: longer than {MAX_URL_LENGTH} characters", code="invalid_url")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput("url: has spaces or control characters", code="invalid_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(
            f"url: the scheme must be http or https, not {parts.scheme or 'none'!r}",
            code="invalid_url",
        )
    if "@" in parts.netloc:
        raise InvalidInput(
            "url: must not carry credentials (user:password@); sign with the endpoint's "
            "secret instead",
            code="invalid_url",
        )
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise InvalidInput(
            "url: the port is not a number from 1 to 65535", code="invalid_url"
        ) from None
    if not host:
        raise InvalidInput("url: has no host", code="invalid_url")
    if parts.fragment:
        raise InvalidInput("url: must not have a #fragment", code="invalid_url")
    return url


def create_endpoint(
    session: Session,
    platform_id: int,
    url: object,
    kinds: Iterable[object] | None,
    now: datetime,
    *,
    allowed_hosts: Collection[str] = (),
) -> tuple[EndpointInfo, str]:
    """A new enabled endpoint, and its signing secret (shown this once). A URL whose host
    is or resolves to an address that is not public is refused (notify/addresses.py),
    unless named in `allowed_hosts`; a name that does not resolve yet is taken (it is
    checked again before each delivery)."""
    checked_url = check_url(url)
    with suppress(Unresolved):
        check_destination(checked_url, allowed_hosts)
    stored_kinds = parse_filter(kinds)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        platform_id=platform_id,
        url=checked_url,
        secret=secret,
        kinds=stored_kinds,
        enabled=True,
        created_at=require_utc(now, "now"),
    )
    session.add(endpoint)
    session.flush()
    return endpoint_info(endpoint), secret


def list_endpoints(session: Session, platform_id: int) -> list[EndpointInfo]:
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.platform_id == platform_id)
        .order_by(WebhookEndpoint.id)
    )
    return [endpoint_info(endpoint) for endpoint in endpoints]


def disable_endpoint(session: Session, platform_id: int, endpoint_id: int) -> EndpointInfo:
    """No new deliveries go to it; its waiting ones are given up when they come due."""
    return _set_enabled(session, platform_id, endpoint_id, enabled=False)


def enable_endpoint(session: Session, platform_id: int, endpoint_id: int) -> EndpointInfo:
    return _set_enabled(session, platform_id, endpoint_id, enabled=True)


def delete_endpoint(session: Session, platform_id: int, endpoint_id: int) -> None:
    """Delete the endpoint and, with it, the record of its deliveries."""
    endpoint = _endpoint(session, platform_id, endpoint_id)
    session.delete(endpoint)
    session.flush()


def list_deliveries(
    session: Session,
    platform_id: int,
    *,
    endpoint_id: int | None = None,
    notice_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> DeliveryPage:
    """The platform's deliveries, oldest first, `limit` (1 to 100) at a time after
    `after_id`; optionally only those of one endpoint, of one notice, or in one status."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: expected a whole number from 1 to {MAX_PAGE}, got {limit!r}")
    query = select(Delivery, Notice.kind).join(Notice, Notice.id == Delivery.notice_id)
    query = query.where(Delivery.platform_id == platform_id)
    if endpoint_id is not None:
        _endpoint(session, platform_id, endpoint_id)
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if notice_id is not None:
        found = session.scalar(select(Notice.platform_id).where(Notice.id == notice_id))
        if found != platform_id:
            raise not_found("notice", notice_id)
        query = query.where(Delivery.notice_id == notice_id)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(
                f"status: expected one of {', '.join(STATUSES)}, got {status!r}",
                code="invalid_status",
            )
        query = query.where(Delivery.status == status)
    if after_id is not None:
        query = query.where(Delivery.id > after_id)
    rows = session.execute(query.order_by(Delivery.id).limit(limit + 1)).all()
    page = tuple(delivery_info(delivery, kind) for delivery, kind in rows[:limit])
    more = len(rows) > limit
    return DeliveryPage(page, page[-1].id if more else None)


def replay_delivery(
    session: Session, platform_id: int, delivery_id: int, now: datetime
) -> DeliveryInfo:
    """Send a delivery again (NOT-2): pending, due `now`, with its message_id. A delivery
    being sent right now, or whose endpoint is disabled, is refused."""
    now = require_utc(now, "now")
    found = session.execute(
        select(Delivery, Notice.kind)
        .join(Notice, Notice.id == Delivery.notice_id)
        .where(Delivery.id == delivery_id, Delivery.platform_id == platform_id)
        .with_for_update(of=Delivery)
    ).first()
    if found is None:
        raise not_found("delivery", delivery_id)
    delivery, kind = found
    if delivery.status == "sending":
        raise Refused("The delivery is being sent right now.", code="delivery_in_flight")
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            raise Refused(
                "The delivery's endpoint is disabled; enable it first.",
                code="endpoint_disabled",
            )
    delivery.status, delivery.next_attempt_at, delivery.claimed_at = "pending", now, None
    session.flush()
    return delivery_info(delivery, kind)


def _endpoint(session: Session, platform_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.platform_id != platform_id:
        raise not_found("webhook endpoint", endpoint_id)
    return endpoint


def _set_enabled(
    session: Session, platform_id: int, endpoint_id: int, *, enabled: bool
) -> EndpointInfo:
    endpoint = _endpoint(session, platform_id, endpoint_id)
    endpoint.enabled = enabled
    session.flush()
    return endpoint_info(endpoint)


def endpoint_info(endpoint: WebhookEndpoint) -> EndpointInfo:
    return EndpointInfo(
        id=endpoint.id,
        url=endpoint.url,
        kinds=split_filter(endpoint.kinds),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
    )


def delivery_info(delivery: Delivery, kind: str) -> DeliveryInfo:
    values: dict[str, Any] = {
        name: getattr(delivery, name)
        for name in DeliveryInfo.__dataclass_fields__
        if name != "kind"
    }
    return DeliveryInfo(kind=kind, **values)
