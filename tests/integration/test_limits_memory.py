"""OPS-4 on a real `tabkeeper serve` process: a body over the cap and JSON nested 3,000
deep are refused (413, 400) while the process's memory (VmRSS of /proc/PID/status) grows
by less than 20 MiB. Before the cap a 50 MB body was read whole and the process grew by
280 MB; the 3,000-deep body answered 500.

Bad inputs tried: a 6 MiB body announced by Content-Length (refused before it is sent), a
50 MB Content-Length, a body just over the cap sent in chunks without a length, and
3,000-deep JSON arrays and objects."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tests.integration.live_server import LiveServer, prepare

MiB = 1024 * 1024


def _rss(pid: int) -> int:
    """The resident memory of process `pid`, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover


def _exchange(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request's head and then its body parts on a fresh connection; the answer's
    status line and headers. A server that answered early may close the connection while
    the body is still being sent: the answer is then read from what it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(head)
        try:
            for part in body_parts:
                connection.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def _events(name: str) -> dict[str, object]:
    event = {"id": name, "type": "call.ended", "org": "acme", "agent": "bot"}
    return {"events": [{**event, "properties": {"duration_seconds": 5}}]}


def _head(key: str, extra: str, path: str = "/v1/events") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_ops4_big_and_deep_bodies_are_refused_without_the_memory_growing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    prepared = prepare(url)
    server = LiveServer(url, tmp_path / "server.log")
    try:
        auth = {"Authorization": f"Bearer {prepared.key}"}
        for i in range(3):  # warm: imports, caches and pools in place before measuring
            assert server.request("POST", "/v1/events", _events(f"warm{i}"), auth)[0] == 200
        before = _rss(server.process.pid)

        six = _exchange(server.port, _head(prepared.key, f"Content-Length: {6 * MiB}\r\n"), [])
        assert six.startswith(b"HTTP/1.1 413"), six
        assert b"application/problem+json" in six
        fifty = _head(prepared.key, "Content-Length: 50000000\r\n")
        assert _exchange(server.port, fifty, [b"x" * MiB]).startswith(b"HTTP/1.1 413")

        piece = b"x" * (64 * 1024)
        chunked = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (5 * 16 + 1) + [b"0\r\n\r\n"]
        streamed = _exchange(
            server.port, _head(prepared.key, "Transfer-Encoding: chunked\r\n"), chunked
        )
        assert streamed.startswith(b"HTTP/1.1 413"), streamed

        for deep in (b"[" * 3000 + b"]" * 3000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
            length = f"Content-Length: {len(deep)}\r\n"
            head = _head(prepared.key, length, "/v1/organizations")
            answer = _exchange(server.port, head, [deep])
            assert answer.startswith(b"HTTP/1.1 400"), answer

        grown = _rss(server.process.pid) - before
        assert grown < 20 * MiB, f"the server grew by {grown / MiB:.1f} MiB"
        assert server.request("POST", "/v1/events", _events("after"), auth)[0] == 200
    finally:
        server.stop()
