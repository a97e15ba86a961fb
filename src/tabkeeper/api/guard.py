"""Requests carrying NUL characters are refused at the door (400 problem+json).

No text tabkeeper stores may hold one (PostgreSQL refuses them in text columns), and a
NUL in a name or a URL is never meant. Checked once here, on the raw query string and
body, rather than in every field of every model.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NUL = b"\x00"
_ESCAPED_NUL = b"\\u0000"


class NulGuard:
    """Reads the body once, before the app: a body of one message (the usual case) is
    checked and handed on as that same message, without a copy; a body in several is
    joined once. Two scans of the bytes (C speed); no other work per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        path = scope.get("raw_path", b"") or scope["path"].encode("utf-8", "surrogateescape")
        if b"%00" in query or _NUL in query or b"%00" in path or "\x00" in scope["path"]:
            await _refuse(send)
            return
        first = await receive()
        if first.get("more_body", False):
            first = await _whole(receive, first)
        body = first.get("body", b"")
        if _NUL in body or _ESCAPED_NUL in body:
            await _refuse(send)
            return
        await self.app(scope, replaying(first, receive), send)


def replaying(first: Message, receive: Receive) -> Receive:
    """A receive channel that gives the body already read (`first`) once, then the real
    channel: a streamed answer listens on it for the client's disconnect, which must not
    be invented here. The middlewares that read the body first (this one, api/limits.py)
    hand it on through this."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return first

    return replay


async def _whole(receive: Receive, first: Message) -> Message:
    """A body sent in several messages, as one."""
    chunks = [first.get("body", b"")]
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body", False))
    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


async def _refuse(send: Send) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "code": "nul_character",
            "detail": "Text must not contain NUL characters.",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
