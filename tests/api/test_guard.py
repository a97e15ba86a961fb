"""The NUL guard in front of the app: it refuses NUL characters and passes everything
else through untouched, streamed answers included."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from tabkeeper.api.guard import NulGuard


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/stream")
    def stream() -> StreamingResponse:
        def parts() -> Iterator[bytes]:
            yield b"first,"
            yield b"second"

        return StreamingResponse(parts(), media_type="text/plain")

    app.add_middleware(NulGuard)
    return app


def test_a_streamed_answer_reaches_the_client_whole() -> None:
    """After the body was read, the guard does not invent a disconnect: a streamed answer
    (files, PDFs) is sent in full."""
    answer = TestClient(_app()).post("/stream", content=b'{"any": "body"}')
    assert answer.status_code == 200
    assert answer.content == b"first,second"


def test_a_nul_in_the_body_is_refused_before_the_route() -> None:
    """Bad input tried: a NUL escaped in a JSON body. 400 nul_character."""
    answer = TestClient(_app()).post("/stream", content=b'{"any": "bo\\u0000dy"}')
    assert answer.status_code == 400
    assert answer.json()["code"] == "nul_character"
