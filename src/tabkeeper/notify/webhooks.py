"""Signed webhooks of notices (NOT-1, NOT-2), per the Standard Webhooks spec.

Each delivery POSTs the JSON body of its notice's event (INT-2, notify/objects.py,
docs/webhooks.md): `{"id", "type", "created_at", "api_version", "data": {"object": …,
"organization": code, …}}`, with the headers `webhook-id` (the delivery's `message_id`, the
same on every try, so the receiver can drop a duplicate), `webhook-timestamp` (when this
try was sent, in Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` made by
`standardwebhooks.Webhook(secret).sign`). A 2xx answer is delivered; any other answer, a
timeout or a network error is a failed try. Redirects are not followed, and the answer's
body is not read.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from tabkeeper.notify.parcels import Outcome, WebhookParcel

SECRET_PREFIX = "whsec_"
USER_AGENT = "tabkeeper-webhooks/1"


def new_secret() -> str:
    """A signing secret: "whsec_" and the base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def new_webhook_id() -> str:
    return f"msg_{secrets.token_hex(16)}"


def webhook_body(document: Mapping[str, Any]) -> str:
    """The JSON text of a webhook's event document: compact, keys sorted, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def signed_headers(parcel: WebhookParcel, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one try, signed as of `now`."""
    signature = Webhook(parcel.secret).sign(parcel.message_id, now, parcel.body)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": parcel.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


class WebhookPoster:
    """Posts one webhook per call, waiting at most `timeout` seconds."""

    def __init__(self, timeout: float, *, transport: httpx.BaseTransport | None = None) -> None:
        self.timeout = timeout
        self.transport = transport

    def send(self, parcel: WebhookParcel, now: datetime) -> Outcome:
        headers = signed_headers(parcel, now)
        try:
            with (
                httpx.Client(timeout=self.timeout, transport=self.transport) as client,
                client.stream(
                    "POST", parcel.url, content=parcel.body.encode("utf-8"), headers=headers
                ) as response,
            ):
                status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            return Outcome.failed(f"{type(error).__name__}: {error}")
        if 200 <= status < 300:
            return Outcome(delivered=True, status_code=status)
        return Outcome.failed(f"HTTP {status}", status)
