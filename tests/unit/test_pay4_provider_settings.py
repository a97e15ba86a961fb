"""PAY-4, PAY-1: the payment provider is chosen by settings in one place
(payments/choice.py), the sandbox by default; a half-configured provider is refused at
startup with a message naming what is missing, never repeating a secret.

Bad settings tried: stripe without any key, without the webhook secret, keys of the wrong
kind (a publishable key as the secret key), test and live keys mixed, an API base that is
not a URL, Stripe keys set while the provider is the sandbox, an unknown provider.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine
from typer.testing import CliRunner

from tabkeeper.cli import app
from tabkeeper.clock import SystemClock
from tabkeeper.payments.choice import offered_cards, payment_provider
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.payments.stripe import StripeProvider
from tabkeeper.settings import Settings

STRIPE = {
    "payment_provider": "stripe",
    "stripe_secret_key": "sk_test_abc",
    "stripe_publishable_key": "pk_test_abc",
    "stripe_webhook_secret": "whsec_abc",
}


def refused(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    return str(caught.value)


def test_pay1_the_sandbox_is_the_default_provider() -> None:
    engine = create_engine("sqlite://")
    provider = payment_provider(Settings(), engine, SystemClock())
    assert isinstance(provider, SandboxProvider)
    assert [value for value, _ in offered_cards(provider)][:1] == ["4242424242424242"]


def test_pay4_stripe_configured_whole_is_chosen() -> None:
    engine = create_engine("sqlite://")
    settings = Settings(**STRIPE, stripe_api_base="http://127.0.0.1:8420")  # type: ignore[arg-type]
    provider = payment_provider(settings, engine, SystemClock())
    assert isinstance(provider, StripeProvider)
    assert provider.publishable_key == "pk_test_abc"
    assert offered_cards(provider) == []  # the hosted page takes the card, no test cards


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"payment_provider": "stripe"}, "TABKEEPER_PAYMENT_PROVIDER=stripe needs "
         "TABKEEPER_STRIPE_SECRET_KEY, TABKEEPER_STRIPE_PUBLISHABLE_KEY, "
         "TABKEEPER_STRIPE_WEBHOOK_SECRET"),
        ({**STRIPE, "stripe_webhook_secret": " "}, "needs TABKEEPER_STRIPE_WEBHOOK_SECRET"),
        ({**STRIPE, "stripe_secret_key": "pk_test_oops"},
         "TABKEEPER_STRIPE_SECRET_KEY should start with sk_ or rk_"),
        ({**STRIPE, "stripe_publishable_key": "pk_live_abc"}, "different modes"),
        ({**STRIPE, "stripe_api_base": "localhost:8420"}, "should be an http:// or https://"),
        ({"stripe_secret_key": "sk_test_abc"}, "TABKEEPER_STRIPE_SECRET_KEY set, but "
         "TABKEEPER_PAYMENT_PROVIDER is sandbox"),
        ({"payment_provider": "paypal"}, "'sandbox' or 'stripe'"),
    ],
)  # fmt: skip
def test_pay4_a_half_configured_provider_is_refused(
    values: dict[str, object], message: str
) -> None:
    assert message in refused(**values)


def test_pay4_serve_refuses_to_start_half_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command stops before anything starts, with the message (exit 2), no traceback."""
    monkeypatch.setenv("TABKEEPER_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    monkeypatch.setenv("TABKEEPER_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("TABKEEPER_STRIPE_SECRET_KEY", "sk_test_abc")
    result = CliRunner().invoke(app, ["serve", "--no-clock"])
    assert result.exit_code == 2
    assert "settings refused: TABKEEPER_PAYMENT_PROVIDER=stripe needs " in result.output
    assert "TABKEEPER_STRIPE_PUBLISHABLE_KEY" in result.output
    assert "Traceback" not in result.output
    assert "sk_test_abc" not in result.output  # the message never repeats a secret
    assert not (tmp_path / "never.db").exists()


def test_pay4_localstripe_is_never_imported_by_tabkeeper() -> None:
    """localstripe (GPL-3.0) is a test-only dependency, run as a subprocess: no module of
    src/ imports it."""
    import ast

    import tabkeeper

    package = Path(tabkeeper.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            assert not any(name.split(".")[0] == "localstripe" for name in names), path
