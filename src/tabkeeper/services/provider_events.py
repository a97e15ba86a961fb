"""Provider callbacks (webhooks), processed exactly once (PAY-3), and what Stripe's
events change (PAY-4).

The entry point (api/routes/provider_webhooks.py) verifies the signature first; a bad one
stores nothing. Then, in ONE transaction, `process` stores the event under its provider
event id (UNIQUE) and carries out its effect. So:
- delivered again (Stripe retries, replays), the event finds its row and changes nothing;
- two deliveries at once: the second waits on the key, then finds the row;
- a crash after the row was written and before the effect rolls both back: the provider
  delivers again (it retries whatever was not answered 2xx) and the event is done whole.
Events also arrive out of order; each effect looks at where things stand and does only
what is still to do: a `payment_intent.payment_failed` after the same payment's
`succeeded` finds the attempt succeeded and changes nothing; a `succeeded` after a
`payment_failed` (the member confirmed a payment that needed authentication) settles the
invoice then.

Effects, by event type:
- `payment_intent.succeeded`: the attempt (by its key in the PaymentIntent's metadata, else
  by reference) recorded succeeded and the invoice paid, as a synchronous answer would
  (services/payments.record_outcome); a failed attempt whose payment went through after
  all (3-D Secure completed) is settled now: invoice paid, past_due -> active (SUB-8).
- `payment_intent.payment_failed`: an unfinished attempt recorded failed (past_due ...).
- `payment_intent.requires_action`: an unfinished attempt recorded as needing the member
  (`authentication_required`: past_due as for a decline, `payment.action_required`).
- `setup_intent.succeeded`: the card saved as the organization's default, unless saved.
- `payment_method.updated`: the saved card's brand, last 4 and expiry follow.
- `payment_method.detached`: the card is no longer anyone's default.
- `charge.dispute.created`: `payment.disputed` to the organization (the invoice named), and
  the invoice flagged (`disputed_at`, shown by the API).
- `charge.refunded`: stored; refunds are recorded when made (services/credit_notes.py).
Any other type is stored and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tabkeeper.db import provider_events as store
from tabkeeper.db.subscriptions import subscription_of
from tabkeeper.db.tables import Invoice, Organization, PaymentAttempt
from tabkeeper.domain.money import Money
from tabkeeper.payments.provider import CardOnFile, ChargeResult
from tabkeeper.services.context import CATALOGS, Billing, CatalogStore, billing_for
from tabkeeper.services.invoices import mark_paid
from tabkeeper.services.payment_methods import save_payment_method
from tabkeeper.services.payments import (
    ClaimedAttempt,
    customer_of,
    record_outcome,
    restore_when_nothing_owed,
)
from tabkeeper.services.records import notify

ATTEMPT_METADATA = "tabkeeper_attempt"
CUSTOMER_METADATA = "tabkeeper_customer"
AUTHENTICATION_REQUIRED = "authentication_required"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified callback of a provider: its id, type, when it happened, its object."""

    provider: str
    id: str
    type: str
    created_at: datetime
    object: dict[str, Any]
    card: CardOnFile | None = None
    """The card an event is about, read from the provider by the entry point before the
    transaction (`setup_intent.succeeded`); None otherwise."""

    @property
    def object_id(self) -> str | None:
        found = self.object.get("id")
        return found if isinstance(found, str) else None

    def metadata(self, key: str) -> str | None:
        metadata = self.object.get("metadata")
        value = metadata.get(key) if isinstance(metadata, dict) else None
        return value if isinstance(value, str) else None


def process(
    session: Session, now: datetime, event: ProviderEvent, catalogs: CatalogStore = CATALOGS
) -> str | None:
    """Store `event` and do its effect, in the caller's transaction; what it did, or None
    when it was processed before (nothing changed now)."""
    if not store.record_event(
        session, event.provider, event.id, event.type, event.object_id, event.created_at, now
    ):
        return None
    handler = HANDLERS.get(event.type)
    outcome = handler(session, now, catalogs, event) if handler else "ignored: type not used"
    store.set_event_outcome(session, event.provider, event.id, outcome)
    return outcome


# -- payment intents ------------------------------------------------------------------


def _attempt(session: Session, event: ProviderEvent) -> PaymentAttempt | None:
    key = event.metadata(ATTEMPT_METADATA)
    found = store.attempt_by_key(session, key) if key else None
    if found is None and event.object_id:
        found = store.attempt_by_reference(session, event.object_id)
    return found


def _billing(
    session: Session, now: datetime, catalogs: CatalogStore, attempt: PaymentAttempt
) -> tuple[Billing, Organization]:
    organization = store.organization_of_invoice(session, attempt.invoice_id)
    return billing_for(session, organization.platform_id, now, catalogs), organization


def _claim(b: Billing, organization: Organization, attempt: PaymentAttempt) -> ClaimedAttempt:
    return ClaimedAttempt(
        attempt_id=attempt.id,
        invoice_id=attempt.invoice_id,
        work_id=None,
        idempotency_key=attempt.idempotency_key,
        customer=customer_of(organization),
        token=None,
        amount=Money(attempt.amount_minor, b.terms.currency),
        description=f"Invoice #{attempt.invoice_id}",
    )


def _intent_succeeded(
    session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
) -> str:
    attempt = _attempt(session, event)
    if attempt is None:
        return "ignored: no payment attempt of tabkeeper"
    reference = event.object_id or attempt.provider_reference or ""
    b, organization = _billing(session, now, catalogs, attempt)
    claim = _claim(b, organization, attempt)
    if attempt.status == "processing":
        result = ChargeResult(True, reference, claim.amount, None, None)
        record_outcome(b, claim, result)
        return "attempt succeeded, invoice paid"
    if attempt.status == "failed" and store.settle_failed_attempt(session, attempt.id, reference):
        invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True)
        assert invoice is not None
        if invoice.status != "open":
            # Paid another way meanwhile: the money is kept as the platform decides.
            return f"attempt succeeded after all; invoice already {invoice.status}"
        mark_paid(b, invoice)
        session.flush()
        subscription = subscription_of(session, organization.id, lock=True)
        restore_when_nothing_owed(b, organization.id, subscription, attempt.idempotency_key)
        return "payment completed after authentication, invoice paid"
    return f"nothing to do: attempt already {attempt.status}"


def _intent_not_paid(code: str | None) -> Any:
    def handle(
        session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
    ) -> str:
        attempt = _attempt(session, event)
        if attempt is None:
            return "ignored: no payment attempt of tabkeeper"
        if attempt.status != "processing":
            return f"nothing to do: attempt already {attempt.status}"
        b, organization = _billing(session, now, catalogs, attempt)
        claim = _claim(b, organization, attempt)
        error = event.object.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        failure = code or error.get("decline_code") or error.get("code") or "card_declined"
        message = error.get("message") or "The payment was declined."
        if failure == AUTHENTICATION_REQUIRED:
            message = "The bank asks the member to confirm this payment."
        result = ChargeResult(False, event.object_id or "", claim.amount, failure, message)
        record_outcome(b, claim, result)
        return f"attempt failed ({failure})"

    return handle


# -- payment methods ------------------------------------------------------------------


def _organization_of_customer(session: Session, customer: str | None) -> Organization | None:
    if not customer or not customer.startswith("org_") or not customer[4:].isdigit():
        return None
    return session.get(Organization, int(customer[4:]))


def _setup_succeeded(
    session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
) -> str:
    card = event.card
    organization = _organization_of_customer(session, event.metadata(CUSTOMER_METADATA))
    if card is None or organization is None:
        return "ignored: no card or no organization of tabkeeper"
    if any(m.organization_id == organization.id
           for m in store.methods_with_token(session, event.provider, card.token)):  # fmt: skip
        return "nothing to do: card already saved"
    b = billing_for(session, organization.platform_id, now, catalogs)
    save_payment_method(b, organization, card)
    return "card saved as the default"


def _method_updated(
    session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
) -> str:
    card = event.object.get("card")
    if not isinstance(card, dict) or not event.object_id:
        return "ignored: not a card"
    changed = store.update_card(
        session,
        event.provider,
        event.object_id,
        str(card.get("brand", "")),
        str(card.get("last4", ""))[-4:],
        int(card.get("exp_month", 0)),
        int(card.get("exp_year", 0)),
    )
    return f"{changed} saved card(s) updated"


def _method_detached(
    session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
) -> str:
    if not event.object_id:
        return "ignored: no payment method"
    return f"{store.forget_default(session, event.provider, event.object_id)} default(s) cleared"


def _dispute(session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent) -> str:
    intent = event.object.get("payment_intent")
    attempt = store.attempt_by_reference(session, intent) if isinstance(intent, str) else None
    if attempt is None:
        return "ignored: no payment attempt of tabkeeper"
    b, organization = _billing(session, now, catalogs, attempt)
    invoice = session.get(Invoice, attempt.invoice_id)
    payload = {
        "invoice": invoice.number if invoice else None,
        "reason": event.object.get("reason"),
        "amount_minor": event.object.get("amount"),
    }
    notify(b, organization.id, "payment.disputed", event.id, payload)
    store.flag_disputed(session, attempt.invoice_id, now)
    return "dispute noticed, invoice flagged"


def _stored_only(
    session: Session, now: datetime, catalogs: CatalogStore, event: ProviderEvent
) -> str:
    return "stored: refunds are recorded when made"


HANDLERS = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_not_paid(None),
    "payment_intent.requires_action": _intent_not_paid(AUTHENTICATION_REQUIRED),
    "setup_intent.succeeded": _setup_succeeded,
    "payment_method.updated": _method_updated,
    "payment_method.automatically_updated": _method_updated,
    "payment_method.detached": _method_detached,
    "charge.dispute.created": _dispute,
    "charge.refunded": _stored_only,
}
"""The event types tabkeeper acts on (docs/payments.md lists them for the dashboard)."""
