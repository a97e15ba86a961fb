"""Webhook signatures, checked as the server makes them: Standard Webhooks
(https://www.standardwebhooks.com/), as in tabkeeper's notify/webhooks.py.

The server signs `f"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256 under the
endpoint's secret (`whsec_` and the base64 of the key) and sends `webhook-signature:
v1,<base64 digest>` (several space-separated signatures are allowed while a secret is
rotated). `verify` checks that one of them matches, in constant time, and that the
timestamp is within `tolerance` seconds of now (a replayed old delivery is refused), then
returns the event, parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """The delivery is not signed by this secret, or not now: drop it (answer 400)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing header {name}")


def _key(secret: str) -> bytes:
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from error


def sign(secret: str, message_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value the server sends for this delivery."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    content = f"{message_id}.{timestamp}.".encode() + raw
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The webhook's event (`{id, type, created_at, api_version, data: {object, …}}`)
    once its signature and timestamp are checked; WebhookVerificationError otherwise.
    `body` is the request's raw body, exactly as received (not re-serialized JSON)."""
    message_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as error:
        raise WebhookVerificationError("webhook-timestamp is not a number") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old or in the future")
    expected = sign(secret, message_id, timestamp, body).split(",", 1)[1].encode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            event: dict[str, Any] = json.loads(body)
            return event
    raise WebhookVerificationError("no signature matches")


class Webhooks:
    """`client.webhooks`: `verify(headers, body, secret)`."""

    def __init__(self, tolerance: int = TOLERANCE_SECONDS) -> None:
        self.tolerance = tolerance

    def verify(self, headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
        """See `tabkeeper_client.webhooks.verify`."""
        return verify(headers, body, secret, tolerance=self.tolerance)
