"""Settings from environment variables prefixed TABKEEPER_, read once (DESIGN.md)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tabkeeper.domain.conversations import LATE_EVENTS_HORIZON

SmtpSecurity = Literal["none", "starttls", "tls"]


class Settings(BaseSettings):
    """Where tabkeeper keeps its data and how it reaches the outside world.

    TABKEEPER_DATABASE_URL: `sqlite:///var/tabkeeper.db` (the default, a file under var/)
    or `postgresql://user:password@host:port/database`.

    E-mail of notices (NOT-1), sent by the dispatcher (tabkeeper.notify):
    TABKEEPER_SMTP_HOST: the SMTP server; unset (the default) turns e-mail off.
    TABKEEPER_SMTP_PORT: its port (25).
    TABKEEPER_SMTP_SECURITY: `none` (plain), `starttls` (upgrade a plain connection, as on
    port 587) or `tls` (TLS from the start, as on port 465); the server's certificate is
    verified against the system's trusted authorities.
    TABKEEPER_SMTP_USERNAME, TABKEEPER_SMTP_PASSWORD: log in when a username is set.
    TABKEEPER_SMTP_FROM: the From address (`billing@localhost`; `Name <address>` works);
    its domain also names the e-mails' Message-IDs.

    Webhooks (NOT-1, NOT-2):
    TABKEEPER_WEBHOOK_TIMEOUT_SECONDS: how long one delivery may take (10).
    TABKEEPER_WEBHOOK_ALLOWED_HOSTS: host names, comma-separated, that webhook URLs may
    name whatever they resolve to (for local testing: `127.0.0.1,localhost`). Empty by
    default: every webhook URL must resolve to public addresses only (notify/addresses.py).

    Metering (USE-3):
    TABKEEPER_LATE_EVENTS_HORIZON: how late a message may arrive and still move billable
    sessions (default 7 days; seconds, or ISO 8601 such as `P3D`, from 1 hour to 366
    days). An older message is stored and counted by every other meter but left out of
    billable sessions, and the answer says so (docs/concepts.md, "Late events").

    Operations:
    TABKEEPER_TELEMETRY: `true` turns on the web framework's OpenTelemetry HTTP traces and
    metrics, sent to the providers the process configures (docs/operations.md). Off by
    default: asking whether they are configured costs every request.

    Limits (OPS-4, api/limits.py; docs/operations.md, "Limits"):
    TABKEEPER_MAX_BODY_BYTES: the largest request body (5 MiB); a larger one answers 413.
    TABKEEPER_MAX_JSON_DEPTH: how deeply a JSON body may nest (64); deeper answers 400.
    TABKEEPER_RATE_LIMITS: `false` turns the per-credential rate limits off (on).
    TABKEEPER_API_KEY_RATE, TABKEEPER_API_KEY_BURST: requests a second one API key may make
    on average (1000), and at once after a quiet spell (2000); more answers 429.
    TABKEEPER_PORTAL_SESSION_RATE, TABKEEPER_PORTAL_SESSION_BURST: the same for one
    member's portal session (10 a second, 60 at once).
    Limits are kept per process: with N API processes a credential may get N times them.

    Payments (PAY-1, PAY-4; docs/payments.md):
    TABKEEPER_PAYMENT_PROVIDER: `sandbox` (the default: test cards, nothing leaves the
    machine) or `stripe`, which needs all three of TABKEEPER_STRIPE_SECRET_KEY (`sk_...`
    or a restricted `rk_...`), TABKEEPER_STRIPE_PUBLISHABLE_KEY (`pk_...`, of the same
    mode, test or live) and TABKEEPER_STRIPE_WEBHOOK_SECRET (`whsec_...`, the signing
    secret of the endpoint `/v1/providers/stripe/webhook`). TABKEEPER_STRIPE_API_BASE:
    another address for Stripe's API (tests: a fake Stripe on 127.0.0.1). A half-configured
    provider (stripe without one of its keys, or Stripe keys with the sandbox) is refused
    at startup with the names of what is missing.
    """

    model_config = SettingsConfigDict(env_prefix="TABKEEPER_", extra="ignore")

    database_url: str = "sqlite:///var/tabkeeper.db"
    public_url: str = "http://127.0.0.1:8000"
    """TABKEEPER_PUBLIC_URL: where members reach this server; portal and checkout links
    start with it."""
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: SmtpSecurity = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "billing@localhost"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_allowed_hosts: str = ""
    late_events_horizon: timedelta = Field(
        default=LATE_EVENTS_HORIZON, ge=timedelta(hours=1), le=timedelta(days=366)
    )
    telemetry: bool = False
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=2, le=512)
    rate_limits: bool = True
    api_key_rate: float = Field(default=1000.0, gt=0)
    api_key_burst: int = Field(default=2000, ge=1)
    portal_session_rate: float = Field(default=10.0, gt=0)
    portal_session_burst: int = Field(default=60, ge=1)
    # Payments (PAY-1, PAY-4): checked together by `_one_payment_provider`
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    request_log: bool = False
    """TABKEEPER_REQUEST_LOG: a JSON line per request (`serve --access-log` sets it;
    api/observe.py). Off by default: the proxy in front usually keeps that log."""
    work_lease_seconds: float = Field(default=300.0, ge=1.0, le=86400.0)
    """TABKEEPER_WORK_LEASE_SECONDS: how long billing work (a collection) left running by
    a worker that died waits before another worker takes it over (5 minutes)."""
    separate_worker: bool = False
    """TABKEEPER_SEPARATE_WORKER: `true` when `tabkeeper worker` processes do the billing
    clock's work, so that `tabkeeper serve` never runs it in its API processes (as
    `--no-clock`; docs/operations.md)."""

    @property
    def webhook_hosts(self) -> frozenset[str]:
        """TABKEEPER_WEBHOOK_ALLOWED_HOSTS as lowercase names (brackets of IPv6 off)."""
        names = (name.strip().strip("[]").rstrip(".").lower() for name in
                 self.webhook_allowed_hosts.split(","))  # fmt: skip
        return frozenset(name for name in names if name)

    @field_validator("smtp_host", "smtp_username")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """An empty variable (TABKEEPER_SMTP_HOST=) means unset."""
        if value is None:
            return None
        return value.strip() or None

    @field_validator("smtp_from")
    @classmethod
    def _an_address(cls, value: str) -> str:
        _name, address = parseaddr(value)
        broken = "\r" in value or "\n" in value or any(c.isspace() for c in address)
        if "@" not in address or broken:
            raise ValueError(f"expected an e-mail address such as billing@example.com: {value!r}")
        return value

    @field_validator(
        "stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret", "stripe_api_base",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_setting_is_none(cls, value: object) -> object:
        """An empty variable (TABKEEPER_STRIPE_SECRET_KEY=) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _one_payment_provider(self) -> Settings:
        """PAY-4: the chosen provider has all it needs, and nothing of another is set."""
        problems = payment_settings_problems(self)
        if problems:
            raise ValueError("; ".join(problems) + " (docs/payments.md)")
        return self


STRIPE_KEYS = {
    "stripe_secret_key": ("TABKEEPER_STRIPE_SECRET_KEY", ("sk_", "rk_")),
    "stripe_publishable_key": ("TABKEEPER_STRIPE_PUBLISHABLE_KEY", ("pk_",)),
    "stripe_webhook_secret": ("TABKEEPER_STRIPE_WEBHOOK_SECRET", ("whsec_",)),
}
"""Each Stripe setting: its variable, and how a value of the right kind starts."""


def _setting_text(value: object) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) else None


def payment_settings_problems(settings: Settings) -> list[str]:
    """What is wrong with the payment settings, in words naming the variables; [] when
    the provider is configured whole (PAY-4). Never repeats a secret."""
    values = {name: _setting_text(getattr(settings, name)) for name in STRIPE_KEYS}
    if settings.payment_provider == "sandbox":
        given = [variable for name, (variable, _) in STRIPE_KEYS.items() if values[name]]
        if settings.stripe_api_base:
            given.append("TABKEEPER_STRIPE_API_BASE")
        if given:
            return [
                f"{', '.join(given)} set, but TABKEEPER_PAYMENT_PROVIDER is sandbox: set "
                "TABKEEPER_PAYMENT_PROVIDER=stripe to use Stripe, or unset them"
            ]
        return []
    problems: list[str] = []
    missing = [variable for name, (variable, _) in STRIPE_KEYS.items() if not values[name]]
    if missing:
        problems.append(f"TABKEEPER_PAYMENT_PROVIDER=stripe needs {', '.join(missing)}")
    for name, (variable, prefixes) in STRIPE_KEYS.items():
        value = values[name]
        if value and not value.startswith(prefixes):
            problems.append(f"{variable} should start with {' or '.join(prefixes)}")
    secret, public = values["stripe_secret_key"] or "", values["stripe_publishable_key"] or ""
    if secret and public and ("_live_" in secret) != ("_live_" in public):
        problems.append(
            "TABKEEPER_STRIPE_SECRET_KEY and TABKEEPER_STRIPE_PUBLISHABLE_KEY are of "
            "different modes (one test, one live)"
        )
    base = settings.stripe_api_base
    if base and not base.startswith(("http://", "https://")):
        problems.append("TABKEEPER_STRIPE_API_BASE should be an http:// or https:// URL")
    return problems
