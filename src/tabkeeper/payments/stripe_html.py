"""The HTML of the Stripe provider's hosted pages (PAY-4): small, plain and accessible
(PRT-2), like the sandbox's. Stripe.js draws the card field in its own frame; the page's
script only confirms the SetupIntent (checkout) or the PaymentIntent (3-D Secure) and then
posts the form. Every value shown is escaped; values for the script go in data-
attributes, never into the script's text."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Protocol

from tabkeeper.domain.money import Currency, Money
from tabkeeper.payments.checkout_html import STYLE


class _StripeJs(Protocol):
    publishable_key: str

    @property
    def stripe_js_url(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CheckoutView:
    """What the checkout page shows, and whose it is."""

    checkout_id: str
    plan_name: str
    organization: str
    customer: str


def amount_of(minor: int, currency: str) -> str:
    return str(Money(minor, Currency.of(currency.upper())))


def document(title: str, body: str, script: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} · Payment</title>\n<style>{STYLE}"
        "#card{padding:.75rem;border:1px solid #767676;border-radius:.25rem;margin-top:.25rem}"
        f"</style>\n{script}</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _stripe_js(provider: _StripeJs) -> str:
    return f'<script src="{escape(provider.stripe_js_url, quote=True)}"></script>\n'


_CHECKOUT_SCRIPT = """<script>
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('pay');
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create('card');
  card.mount('#card');
  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    var alert = document.getElementById('error');
    alert.textContent = '';
    form.querySelector('button').disabled = true;
    var result = await stripe.confirmCardSetup(form.dataset.secret, {payment_method: {card: card}});
    if (result.error) {
      alert.textContent = result.error.message || 'Your card was declined.';
      form.querySelector('button').disabled = false;
      return;
    }
    form.elements.setup_intent.value = result.setupIntent.id;
    form.submit();
  });
});
</script>
"""

_PAYMENT_SCRIPT = """<script>
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('confirm');
  var stripe = Stripe(form.dataset.key);
  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    var alert = document.getElementById('error');
    alert.textContent = '';
    var result = await stripe.confirmCardPayment(form.dataset.secret);
    if (result.error) {
      alert.textContent = result.error.message || 'The payment was not confirmed.';
      return;
    }
    form.submit();
  });
});
</script>
"""


def _summary(view: CheckoutView, amount: str) -> str:
    return (
        "<dl>"
        f"<dt>Organization</dt><dd>{escape(view.organization)}</dd>"
        f"<dt>Plan</dt><dd>{escape(view.plan_name)}</dd>"
        f"<dt>Amount due now</dt><dd>{escape(amount)}</dd>"
        "</dl>"
    )


def checkout_form(view: CheckoutView, amount: str, provider: _StripeJs, secret: str) -> str:
    action = f"/stripe/checkout/{escape(view.checkout_id, quote=True)}"
    body = (
        "<h1>Pay for your subscription</h1>"
        f"{_summary(view, amount)}"
        f'<form id="pay" method="post" action="{action}" '
        f'data-key="{escape(provider.publishable_key, quote=True)}" '
        f'data-secret="{escape(secret, quote=True)}">'
        '<label for="card">Card</label><div id="card"></div>'
        '<input type="hidden" name="setup_intent" value="">'
        '<p id="error" class="error" role="alert"></p>'
        f'<button type="submit">Pay {escape(amount)}</button>'
        "</form>"
        "<p>Your card is kept by Stripe; this site never sees its number.</p>"
    )
    return document("Pay", body, _stripe_js(provider) + _CHECKOUT_SCRIPT)


def payment_form(
    payment_id: str,
    amount: str,
    provider: _StripeJs,
    secret: str,
    error: str = "",
    setup_intent: str | None = None,
) -> str:
    """The bank's confirmation of a payment (3-D Secure), then a post: to /stripe/pay/...
    for an off-session payment, or back to the checkout (with its `setup_intent`)."""
    if setup_intent is None:
        action, hidden = f"/stripe/pay/{escape(payment_id, quote=True)}", ""
    else:
        action = f"/stripe/checkout/{escape(payment_id, quote=True)}"
        hidden = f'<input type="hidden" name="setup_intent" value="{escape(setup_intent, True)}">'
    body = (
        "<h1>Confirm your payment</h1>"
        f"<p>Your bank asks you to confirm the payment of {escape(amount)}.</p>"
        f'<form id="confirm" method="post" action="{action}" '
        f'data-key="{escape(provider.publishable_key, quote=True)}" '
        f'data-secret="{escape(secret, quote=True)}">{hidden}'
        f'<p id="error" class="error" role="alert">{escape(error)}</p>'
        f'<button type="submit">Confirm {escape(amount)}</button>'
        "</form>"
    )
    return document("Confirm your payment", body, _stripe_js(provider) + _PAYMENT_SCRIPT)


def payment_done(amount: str) -> str:
    body = f'<h1 role="status">Payment confirmed</h1><p>{escape(amount)} was paid. Thank you.</p>'
    return document("Payment confirmed", body)


def paid(view: CheckoutView, amount: str) -> str:
    body = (
        '<h1 role="status">Payment received</h1>'
        f"<p>{escape(amount)} was paid; the {escape(view.plan_name)} subscription "
        "has started.</p>"
    )
    return document("Payment received", body)


def declined(view: CheckoutView, message: str | None = None) -> str:
    body = (
        f'<h1 role="alert">{escape(message or "Your card was declined.")}</h1>'
        "<p>Nothing was charged and the subscription has not started. Start a new "
        "checkout to pay with another card.</p>"
    )
    return document("Payment declined", body)


def problem_page(title: str, message: str) -> str:
    return document(title, f'<h1 role="alert">{escape(title)}</h1><p>{escape(message)}</p>')
