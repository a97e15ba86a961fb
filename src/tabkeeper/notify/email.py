"""E-mail of notices over SMTP (NOT-1), with the standard library's smtplib.

The connection follows the settings (tabkeeper.settings): plain, STARTTLS or TLS from the
start, logging in when a username is set; one connection per e-mail. The Message-ID
header is the delivery's `message_id`, fixed when the delivery was made, so an e-mail sent
again after a crash carries the same id. Any failure (refused, unreachable, a TLS error)
is one failed try with the server's reply or the error in its message; the dispatcher
decides when to try again.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from tabkeeper.notify.parcels import EmailParcel, Outcome
from tabkeeper.settings import Settings

SMTP_TIMEOUT_SECONDS = 30.0
FALLBACK_DOMAIN = "tabkeeper.localhost"


def new_message_id(settings: Settings) -> str:
    """A fresh Message-ID, `<random@domain of the From address>`."""
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2]
    if not domain or len(domain) > 60:
        domain = FALLBACK_DOMAIN
    return f"<{secrets.token_hex(16)}@{domain}>"


def can_receive(address: str | None) -> bool:
    """Does a member's e-mail look like one address (nothing that could break a header)?"""
    if not address or len(address) > 320:
        return False
    local, at, domain = address.partition("@")
    return bool(local and at and domain) and not any(
        c.isspace() or ord(c) < 32 or c in "<>,;\"'" for c in address
    )


class SmtpMailer:
    """Sends one e-mail per call. `ssl_context` verifies the server's certificate (the
    system's trusted authorities unless given)."""

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context

    @property
    def enabled(self) -> bool:
        return self.settings.smtp_host is not None

    def message(self, parcel: EmailParcel, now: datetime) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = parcel.to
        message["Subject"] = parcel.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = parcel.message_id
        message["Auto-Submitted"] = "auto-generated"
        message["X-Tabkeeper-Notice"] = parcel.kind
        message.set_content(parcel.text)
        return message

    def send(self, parcel: EmailParcel, now: datetime) -> Outcome:
        host = self.settings.smtp_host
        if host is None:
            return Outcome.failed("e-mail is off: TABKEEPER_SMTP_HOST is not set")
        message = self.message(parcel, now)
        try:
            self._deliver(host, message)
        except smtplib.SMTPResponseException as error:
            reply = _text(error.smtp_error)
            return Outcome.failed(f"SMTP {error.smtp_code}: {reply}", error.smtp_code)
        except smtplib.SMTPRecipientsRefused as error:
            code, refusal = next(iter(error.recipients.values()))
            return Outcome.failed(f"SMTP {code}: {_text(refusal)}", code)
        except (smtplib.SMTPException, OSError) as error:
            return Outcome.failed(f"{type(error).__name__}: {error}")
        return Outcome(delivered=True)

    def _deliver(self, host: str, message: EmailMessage) -> None:
        settings = self.settings
        context = self.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if settings.smtp_security == "tls":
            client = smtplib.SMTP_SSL(
                host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=context)
            if settings.smtp_username is not None:
                password = settings.smtp_password
                client.login(
                    settings.smtp_username, password.get_secret_value() if password else ""
                )
            client.send_message(message)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
