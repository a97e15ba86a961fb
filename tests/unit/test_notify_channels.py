"""What goes over the wire (NOT-1): the webhook's body and Standard Webhooks headers, the
e-mail's headers, and the settings that drive them."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from tabkeeper.notify.email import SmtpMailer, can_receive, new_message_id
from tabkeeper.notify.objects import envelope
from tabkeeper.notify.parcels import EmailParcel, Outcome, WebhookParcel
from tabkeeper.notify.webhooks import (
    WebhookPoster,
    new_secret,
    new_webhook_id,
    signed_headers,
    webhook_body,
)
from tabkeeper.settings import Settings

T0 = datetime(2026, 1, 8, 9, 30, tzinfo=UTC)


def _parcel(url: str = "https://hooks.test/x") -> WebhookParcel:
    payload = {"invoice": "INV-1", "amount_minor": 4900}
    made = {"id": 7, "number": "INV-1", "currency": "EUR"}
    body = webhook_body(envelope("evt_1", "invoice.paid", T0, payload, "acme", made))
    return WebhookParcel(1, T0, new_webhook_id(), url, new_secret(), body)


def test_the_webhook_body_is_kind_time_and_payload_with_the_organization() -> None:
    """NOT-1, INT-2: {"id", "type", "created_at", "api_version", "data": {"object", ...payload,
    "organization"}} (and the old "timestamp" for one version), compact JSON, keys sorted."""
    assert _parcel().body == (
        '{"api_version":"v1","created_at":"2026-01-08T09:30:00Z",'
        '"data":{"amount_minor":4900,"invoice":"INV-1",'
        '"object":{"currency":"EUR","id":7,"number":"INV-1"},"organization":"acme"},'
        '"id":"evt_1","timestamp":"2026-01-08T09:30:00Z","type":"invoice.paid"}'
    )


def test_int2_a_usage_threshold_is_one_type_with_the_old_kind_kept() -> None:
    """INT-2: `usage.minutes_80` goes out as `usage.threshold_crossed`, the old kind in
    `legacy_type` for one version."""
    document = envelope("evt_2", "usage.minutes_80", T0, {}, "acme", {"percent": 80})
    assert document["type"] == "usage.threshold_crossed"
    assert document["legacy_type"] == "usage.minutes_80"
    assert "legacy_type" not in envelope("evt_3", "invoice.paid", T0, {}, "acme", {})


def test_signed_headers_verify_with_standardwebhooks() -> None:
    """NOT-1: the signature is Standard Webhooks' (verified here with the same library,
    as of the real time, which is when verify() checks the timestamp)."""
    parcel = _parcel()
    now = datetime.fromtimestamp(1_767_000_000, tz=UTC)
    headers = signed_headers(parcel, now)
    assert headers["webhook-id"] == parcel.message_id
    assert headers["webhook-timestamp"] == "1767000000"
    assert headers["webhook-signature"].startswith("v1,")
    assert (
        Webhook(parcel.secret).sign(parcel.message_id, now, parcel.body)
        == (headers["webhook-signature"])
    )


def test_secrets_and_ids_are_fresh_and_well_formed() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(s.startswith("whsec_") and len(s) == 6 + 32 for s in secrets)
    assert new_webhook_id().startswith("msg_") and len(new_webhook_id()) == 36


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(200), Outcome(True, 200)),
        (httpx.Response(204), Outcome(True, 204)),
        (httpx.Response(301, headers={"location": "https://elsewhere.test/"}),
         Outcome(False, 301, "HTTP 301")),
        (httpx.Response(410), Outcome(False, 410, "HTTP 410")),
        (httpx.ConnectError("refused"), Outcome(False, None, "ConnectError: refused")),
        (httpx.ReadTimeout("slow"), Outcome(False, None, "ReadTimeout: slow")),
    ],
)  # fmt: skip
def test_only_2xx_is_delivered(answer: httpx.Response | Exception, outcome: Outcome) -> None:
    """NOT-2: 2xx is delivered; a redirect (not followed), any other status, a timeout
    or a network error is a failed try."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    poster = WebhookPoster(5, transport=httpx.MockTransport(handler))
    assert poster.send(_parcel(), T0) == outcome
    assert len(seen) == 1 and seen[0].method == "POST"
    assert seen[0].headers["content-type"] == "application/json"


def test_an_unusable_url_is_a_failed_try() -> None:
    assert WebhookPoster(1).send(_parcel("http://[::1"), T0).delivered is False


def test_errors_are_cut_to_fit_the_column() -> None:
    assert len(Outcome.failed("x" * 2000).error or "") == 500


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("alice@acme.test", True),
        ("Alice.B+billing@acme.test", True),
        ("alice", False),
        ("@acme.test", False),
        ("alice@", False),
        ("alice@acme.test\nBcc: x@evil.test", False),
        ("alice @acme.test", False),
        ("a<b>@acme.test", False),
        ("a," + "b" * 320 + "@acme.test", False),
        ("", False),
        (None, False),
    ],
)
def test_which_member_addresses_can_receive(address: str | None, ok: bool) -> None:
    """Addresses that could break a header are never used."""
    assert can_receive(address) is ok


def test_the_email_carries_its_message_id_and_kind() -> None:
    """NOT-1: Message-ID is the delivery's, fixed at creation; the From domain names it."""
    settings = Settings(smtp_host="mail.test", smtp_from="Acme Billing <billing@acme.test>")
    message_id = new_message_id(settings)
    assert message_id.startswith("<") and message_id.endswith("@acme.test>")
    parcel = EmailParcel(1, T0, message_id, "trial.ended", "a@b.test", "Subject", "Text\n")
    message = SmtpMailer(settings).message(parcel, T0)
    assert message["Message-ID"] == message_id
    assert message["From"] == "Acme Billing <billing@acme.test>"
    assert (message["To"], message["Subject"]) == ("a@b.test", "Subject")
    assert message["Date"] == "Thu, 08 Jan 2026 09:30:00 +0000"
    assert message["X-Tabkeeper-Notice"] == "trial.ended"
    assert message.get_content() == "Text\n"


def test_a_long_from_domain_falls_back_for_message_ids() -> None:
    settings = Settings(smtp_from=f"b@{'x' * 70}.test")
    assert new_message_id(settings).endswith("@tabkeeper.localhost>")


def test_email_off_is_a_failed_try() -> None:
    mailer = SmtpMailer(Settings(smtp_host=None))
    parcel = EmailParcel(1, T0, "<x@y>", "trial.ended", "a@b.test", "S", "T\n")
    outcome = mailer.send(parcel, T0)
    assert not mailer.enabled and not outcome.delivered
    assert "TABKEEPER_SMTP_HOST" in (outcome.error or "")


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SMTP and webhook settings, from TABKEEPER_* variables."""
    for name in ("HOST", "PORT", "SECURITY", "USERNAME", "PASSWORD", "FROM"):
        monkeypatch.delenv(f"TABKEEPER_SMTP_{name}", raising=False)
    monkeypatch.delenv("TABKEEPER_WEBHOOK_TIMEOUT_SECONDS", raising=False)
    defaults = Settings()
    assert (defaults.smtp_host, defaults.smtp_port, defaults.smtp_security) == (None, 25, "none")
    assert (defaults.smtp_username, defaults.smtp_password) == (None, None)
    assert (defaults.smtp_from, defaults.webhook_timeout_seconds) == ("billing@localhost", 10)
    monkeypatch.setenv("TABKEEPER_SMTP_HOST", "  ")
    monkeypatch.setenv("TABKEEPER_SMTP_PORT", "587")
    monkeypatch.setenv("TABKEEPER_SMTP_SECURITY", "starttls")
    monkeypatch.setenv("TABKEEPER_SMTP_PASSWORD", "s3cret")
    read = Settings()
    assert (read.smtp_host, read.smtp_port, read.smtp_security) == (None, 587, "starttls")
    assert read.smtp_password is not None and "s3cret" not in repr(read)
    assert read.smtp_password.get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    "bad",
    [
        {"smtp_security": "ssl"},
        {"smtp_port": 0},
        {"smtp_port": 70000},
        {"smtp_from": "billing"},
        {"smtp_from": "billing@acme.test\nBcc: x@evil.test"},
        {"webhook_timeout_seconds": 0},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    """Bad inputs tried: an unknown security mode, ports out of range, a From without an
    address or with a line break, no timeout."""
    with pytest.raises(ValidationError) as refused:
        Settings(**bad)  # type: ignore[arg-type]
    assert next(iter(bad)) in str(refused.value)
