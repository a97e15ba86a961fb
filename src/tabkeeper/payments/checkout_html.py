"""The HTML of the sandbox's hosted checkout page (PAY-1, SUB-3): small, plain and
accessible (PRT-2): one form with a labelled select of the sandbox's test cards and a
Pay button, no JavaScript; outcomes are headings a screen reader announces. Every value
shown is escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from tabkeeper.payments.sandbox import TEST_CARDS, SandboxCardKind

BEHAVIOUR = {
    SandboxCardKind.CARD_OK: "payment succeeds",
    SandboxCardKind.CARD_DECLINED: "declined",
    SandboxCardKind.CARD_FAILS_LATER: "saved, but the charge is declined",
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1a1a1a}label{display:block;font-weight:600;margin-top:1rem}"
    "select,button{font:inherit;padding:.5rem;margin-top:.25rem}"
    "button{margin-top:1rem;background:#1f4fd1;color:#fff;border:0;border-radius:.25rem}"
    "button:focus,select:focus,a:focus{outline:3px solid #f5a623;outline-offset:2px}"
    ".error{color:#a30000;font-weight:600}dt{font-weight:600}"
)


@dataclass(frozen=True, slots=True)
class CheckoutView:
    """What the page shows of one checkout."""

    checkout_id: str
    plan_name: str
    organization: str
    amount: str
    """e.g. "30.00 USD"."""
    return_url: str | None
    """Where "Continue" leads; None when that is this page itself."""


def document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} · Sandbox checkout</title>\n<style>{STYLE}</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _summary(view: CheckoutView) -> str:
    return (
        "<dl>"
        f"<dt>Organization</dt><dd>{escape(view.organization)}</dd>"
        f"<dt>Plan</dt><dd>{escape(view.plan_name)}</dd>"
        f"<dt>Amount due now</dt><dd>{escape(view.amount)}</dd>"
        "</dl>"
    )


def payment_form(view: CheckoutView, error: str | None = None) -> str:
    options = "".join(
        f'<option value="{card.number}">'
        f"{' '.join(card.number[i : i + 4] for i in range(0, 16, 4))} "
        f"({card.brand}): {BEHAVIOUR[card.kind]}</option>"
        for card in TEST_CARDS
    )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    action = f"/sandbox/checkout/{escape(view.checkout_id, quote=True)}"
    body = (
        "<h1>Pay for your subscription</h1>"
        "<p>This is the sandbox payment provider: no real card is charged.</p>"
        f"{_summary(view)}{alert}"
        f'<form method="post" action="{action}">'
        '<label for="card">Test card</label>'
        '<select id="card" name="card" aria-describedby="card-help" required>'
        f"{options}</select>"
        '<p id="card-help">Each test card behaves as its label says.</p>'
        f'<button type="submit">Pay {escape(view.amount)}</button>'
        "</form>"
    )
    return document("Pay", body)


def _continue(view: CheckoutView, text: str) -> str:
    if view.return_url is None:
        return ""
    return f'<p><a href="{escape(view.return_url, quote=True)}">{escape(text)}</a></p>'


def paid(view: CheckoutView) -> str:
    body = (
        '<h1 role="status">Payment received</h1>'
        f"<p>{escape(view.amount)} was paid; the {escape(view.plan_name)} subscription "
        "has started.</p>"
        f"{_continue(view, 'Continue')}"
    )
    return document("Payment received", body)


def declined(view: CheckoutView, message: str = "Your card was declined.") -> str:
    body = (
        f'<h1 role="alert">{escape(message)}</h1>'
        "<p>Nothing was charged and the subscription has not started. Start a new "
        "checkout to pay with another card.</p>"
        f"{_continue(view, 'Back')}"
    )
    return document("Payment declined", body)


def problem_page(title: str, message: str) -> str:
    return document(title, f'<h1 role="alert">{escape(title)}</h1><p>{escape(message)}</p>')
