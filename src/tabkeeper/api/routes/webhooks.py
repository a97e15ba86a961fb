"""Webhook endpoints of the platform and their deliveries: list, replay (NOT-1, NOT-2).
Platform API key only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, StringConstraints

from tabkeeper.api.context import ApiDep, CallerDep
from tabkeeper.api.pages import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from tabkeeper.api.schemas import Deleted, ObjectId, Strict
from tabkeeper.db.tables_notify import WebhookEndpoint as EndpointRow
from tabkeeper.notify import endpoints as service

router = APIRouter(tags=["webhooks"])


class WebhookEndpointIn(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    kinds: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None,
        max_length=100,
        description="Notice kinds to receive (`trial.*` style groups allowed); all if absent.",
    )


class WebhookEndpoint(BaseModel):
    id: int
    url: str
    kinds: list[str] | None
    enabled: bool
    created_at: datetime
    secret: str | None = Field(
        default=None, description="The signing secret (whsec_...), shown when created."
    )


class Delivery(BaseModel):
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


def _show(info: service.EndpointInfo, secret: str | None = None) -> WebhookEndpoint:
    kinds = None if info.kinds is None else list(info.kinds)
    return WebhookEndpoint(
        id=info.id, url=info.url, kinds=kinds, enabled=info.enabled,
        created_at=info.created_at, secret=secret,
    )  # fmt: skip


@router.post(
    "/webhook_endpoints",
    operation_id="webhook_endpoints.create",
    status_code=status.HTTP_201_CREATED,
)
def create_endpoint(body: WebhookEndpointIn, api: ApiDep, caller: CallerDep) -> WebhookEndpoint:
    """Register a URL for signed notices (Standard Webhooks); the secret is shown once."""
    caller.require_platform()
    with api.billing(caller) as b:
        info, secret = service.create_endpoint(
            b.session, caller.platform_id, body.url, body.kinds, b.now
        )
        return _show(info, secret)


@router.get("/webhook_endpoints", operation_id="webhook_endpoints.list")
def list_endpoints(
    api: ApiDep, caller: CallerDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[WebhookEndpoint]:
    caller.require_platform()
    after = decode_cursor(cursor)
    with api.reading(caller) as b:
        found = [e for e in service.list_endpoints(b.session, caller.platform_id) if e.id > after]
    shown = found[:limit]
    more = len(found) > limit
    return Page[WebhookEndpoint](
        data=[_show(e) for e in shown],
        has_more=more,
        next_cursor=encode_cursor(shown[-1].id) if more else None,
    )


@router.get("/webhook_endpoints/{endpoint_id}", operation_id="webhook_endpoints.get")
def get_endpoint(endpoint_id: ObjectId, api: ApiDep, caller: CallerDep) -> WebhookEndpoint:
    caller.require_platform()
    with api.reading(caller) as b:
        row = b.session.get(EndpointRow, endpoint_id)
        if row is None or row.platform_id != caller.platform_id:
            raise service.not_found("webhook endpoint", endpoint_id)
        return _show(service.endpoint_info(row))


@router.post("/webhook_endpoints/{endpoint_id}/{action}", operation_id="webhook_endpoints.switch")
def switch_endpoint(
    endpoint_id: ObjectId, action: Literal["enable", "disable"], api: ApiDep, caller: CallerDep
) -> WebhookEndpoint:
    """Stop sending to an endpoint (its waiting deliveries fail) or start again."""
    caller.require_platform()
    with api.billing(caller) as b:
        switch = service.enable_endpoint if action == "enable" else service.disable_endpoint
        return _show(switch(b.session, caller.platform_id, endpoint_id))


@router.delete("/webhook_endpoints/{endpoint_id}", operation_id="webhook_endpoints.delete")
def delete_endpoint(endpoint_id: ObjectId, api: ApiDep, caller: CallerDep) -> Deleted:
    caller.require_platform()
    with api.billing(caller) as b:
        service.delete_endpoint(b.session, caller.platform_id, endpoint_id)
    return Deleted(id=endpoint_id)


@router.get("/webhook_endpoints/{endpoint_id}/deliveries", operation_id="webhook_deliveries.list")
def list_deliveries(
    endpoint_id: ObjectId,
    api: ApiDep,
    caller: CallerDep,
    status_: Annotated[
        Literal["pending", "sending", "delivered", "failed"] | None, Query(alias="status")
    ] = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[Delivery]:
    """Every try on record (NOT-2), oldest first."""
    caller.require_platform()
    with api.reading(caller) as b:
        found = service.list_deliveries(
            b.session, caller.platform_id, endpoint_id=endpoint_id, status=status_,
            limit=limit, after_id=decode_cursor(cursor) or None,
        )  # fmt: skip
    return Page[Delivery](
        data=[Delivery(**asdict(d)) for d in found.deliveries],
        has_more=found.next_after_id is not None,
        next_cursor=None if found.next_after_id is None else encode_cursor(found.next_after_id),
    )


@router.post(
    "/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
    operation_id="webhook_deliveries.replay",
)
def replay_delivery(
    endpoint_id: ObjectId, delivery_id: ObjectId, api: ApiDep, caller: CallerDep
) -> Delivery:
    """Send a delivery again with the same webhook-id (NOT-2)."""
    caller.require_platform()
    with api.billing(caller) as b:
        found = service.list_deliveries(
            b.session, caller.platform_id, endpoint_id=endpoint_id, after_id=delivery_id - 1,
            limit=1,
        )  # fmt: skip
        if not found.deliveries or found.deliveries[0].id != delivery_id:
            raise service.not_found("delivery", delivery_id)
        return Delivery(
            **asdict(service.replay_delivery(b.session, caller.platform_id, delivery_id, b.now))
        )
