"""Real receivers on 127.0.0.1 for the notify tests: an SMTP server (aiosmtpd) that keeps
what it receives, and a webhook receiver (http.server in a thread) that verifies every
signature with standardwebhooks and answers with scripted status codes."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---------------------------------------------------------------- SMTP
@dataclass
class Mailbox:
    """What the SMTP server received; `refuse` names recipients it answers 550 for."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def received(self) -> list[tuple[str, str]]:
        """(To, notice kind) of every message, in order."""
        with self.lock:
            return [(str(m["To"]), str(m["X-Tabkeeper-Notice"])) for m in self.messages]


@contextmanager
def smtp_server(
    *,
    tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on 127.0.0.1: plain, TLS from the start (`tls`), or requiring
    STARTTLS (`starttls`), optionally requiring a login."""
    mailbox = Mailbox()
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    if login is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            return AuthResult(success=ok, handled=False)

        options.update(authenticator=authenticator, auth_required=True)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=tls, **options)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for 127.0.0.1 made with openssl: (server context, client context
    that trusts it)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


# ---------------------------------------------------------------- webhooks
@dataclass(frozen=True)
class Post:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def document(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Keeps every POST; answers with `script` (one status per post) then `default`."""

    url: str = ""
    secret: str = ""
    script: list[int] = field(default_factory=list)
    default: int = 204
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, headers: dict[str, str], body: bytes) -> int:
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        with self.lock:
            self.posts.append(Post(headers, body, verified))
            return self.script.pop(0) if self.script else self.default

    def ids(self) -> list[str]:
        with self.lock:
            return [post.webhook_id for post in self.posts]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            self.send_response(receiver.take(headers, body))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
