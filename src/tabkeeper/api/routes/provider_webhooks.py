"""Provider callbacks (PAY-3): `POST /v1/providers/stripe/webhook`.

No API key: the `Stripe-Signature` header is the credential, checked against
TABKEEPER_STRIPE_WEBHOOK_SECRET with a tolerance of 5 minutes (payments/stripe.py). A bad
signature or body is 400 `invalid_signature` / `invalid_event` and stores nothing. A good
one is stored once and processed in the same transaction (services/provider_events.py):
200 with `duplicate` true when it was processed before (nothing changed now). Should the
processing fail, nothing is stored and the answer is 5xx, so Stripe delivers it again.
With the sandbox provider the route does not exist (404).
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from tabkeeper.api.context import Api, ApiDep
from tabkeeper.db.engine import transaction
from tabkeeper.domain.errors import NotFound
from tabkeeper.payments.provider import CardOnFile
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.services.provider_events import ProviderEvent, process

router = APIRouter(tags=["providers"])

_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Stripe event, exactly as Stripe sent it (the signature covers "
        "the raw bytes).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "parameters": [
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Stripe's signature of the body (t=...,v1=...).",
        }
    ],
}


class ProviderEventReceived(BaseModel):
    """What became of a provider's callback."""

    event: str = Field(description="The provider's event id.")
    duplicate: bool = Field(description="True when it was processed before: nothing changed.")
    outcome: str | None = Field(description="What processing it did; null for a duplicate.")


@router.post(
    "/providers/stripe/webhook",
    operation_id="providers.stripe_webhook",
    openapi_extra=_BODY,
)
async def stripe_webhook(request: Request, api: ApiDep) -> ProviderEventReceived:
    """A Stripe event, verified by its signature and processed exactly once (PAY-3)."""
    provider = api.provider
    if not isinstance(provider, StripeProvider):
        raise NotFound("Stripe is not this server's payment provider.")
    payload = await request.body()
    signature = request.headers.get("stripe-signature", "")
    return await anyio.to_thread.run_sync(_receive, api, provider, payload, signature)


def _receive(
    api: Api, provider: StripeProvider, payload: bytes, signature: str
) -> ProviderEventReceived:
    raw = provider.verify_event(payload, signature)
    found = raw["data"]["object"]
    card: CardOnFile | None = None
    if raw["type"] == "setup_intent.succeeded" and isinstance(found.get("payment_method"), str):
        card = provider.card_on_file(found["payment_method"])  # before the transaction
    created = raw.get("created")
    event = ProviderEvent(
        provider=provider.name,
        id=raw["id"],
        type=raw["type"],
        created_at=datetime.fromtimestamp(created, UTC)
        if isinstance(created, int)
        else api.clock.now(),
        object=found,
        card=card,
    )
    with transaction(api.engine) as session:
        outcome = process(session, api.clock.now(), event, api.store)
    return ProviderEventReceived(event=event.id, duplicate=outcome is None, outcome=outcome)
