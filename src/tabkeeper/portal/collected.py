"""The words of the billing tab after a collection (SUB-12): "Pay now" and a saved card
say which invoices were paid, whether the subscription is active, or which charge was
declined and what to do next."""

from __future__ import annotations

from tabkeeper.domain.lifecycle import State
from tabkeeper.portal.web import Flash
from tabkeeper.services.collections import Collection

NOTHING_OPEN = "There is nothing to pay: no invoice is open."


def _paid_text(done: Collection) -> str:
    if not done.paid:
        return ""
    numbers = done.named(done.paid)
    text = f"Paid {', '.join(numbers)}."
    if done.state == State.ACTIVE and not done.still_open:
        text += " Your subscription is active."
    return text


def collected_flash(area: str, done: Collection) -> Flash:
    """What "Pay now" did, next to the card of `area`."""
    if done.failed is not None:
        (number,) = done.named([done.failed])
        text = (
            f"Invoice {number} was not paid: {done.failure_message} "
            "Update your card with Manage; saving it collects at once."
        )
        return Flash(area, " ".join(part for part in (_paid_text(done), text) if part), True)
    if not done.paid:
        return Flash(area, NOTHING_OPEN)
    return Flash(area, _paid_text(done))


def saved_flash(card: str, done: Collection) -> Flash:
    """The Manage page's message: the card saved, and what collecting with it did."""
    text = f"{card} is now your card."
    if done.failed is not None:
        (number,) = done.named([done.failed])
        return Flash(
            "payment",
            " ".join(
                part
                for part in (
                    text,
                    _paid_text(done),
                    f"Invoice {number} could not be collected with it: {done.failure_message}",
                )
                if part
            ),
            True,
        )
    if done.paid:
        text += " " + _paid_text(done).replace("Paid ", "Collected at once: ", 1)
    return Flash("payment", text)
