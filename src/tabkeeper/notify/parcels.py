"""What the dispatcher hands to a channel, and what a channel answers (NOT-1, NOT-2).

A parcel is everything one delivery needs, read from the database when the delivery is
claimed, so that sending happens outside any transaction. An outcome is one try's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ERROR_LENGTH = 500
"""Room for `deliveries.last_error`."""


@dataclass(frozen=True, slots=True)
class EmailParcel:
    """One e-mail to one address; `message_id` is its Message-ID header."""

    delivery_id: int
    claimed_at: datetime
    message_id: str
    kind: str
    to: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class WebhookParcel:
    """One signed POST to one endpoint; `message_id` is its webhook-id header and `body`
    the exact JSON text that is signed and sent."""

    delivery_id: int
    claimed_at: datetime
    message_id: str
    url: str
    secret: str
    body: str


Parcel = EmailParcel | WebhookParcel


@dataclass(frozen=True, slots=True)
class Outcome:
    """One try: delivered or not, the receiver's status code when it answered, and what
    went wrong otherwise."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str, status_code: int | None = None) -> Outcome:
        return cls(False, status_code, error[:ERROR_LENGTH])
