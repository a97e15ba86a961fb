"""The `localstripe` fixture of the Stripe tests here (PAY-4): one fake Stripe per test run,
started as PostgreSQL is (scripts/with-postgres), on a free port of 127.0.0.1, stopped when
the run ends."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVE = Path(__file__).with_name("serve_localstripe.py")
READY = "Running on"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """The base URL of a localstripe of this test run ("http://127.0.0.1:PORT")."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVE), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    said: list[str] = []
    for line in process.stdout:  # blocks until it prints, ends if it exits
        said.append(line)
        if READY in line:
            break
    else:
        process.wait(10)
        pytest.fail(f"localstripe did not start (exit {process.returncode}): {''.join(said)}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


# The browser fixtures of the billing tab's tests (Debian's Chromium through Playwright),
# for the hosted page's journey here.
from tests.portal.conftest import page  # noqa: E402, F401 (`browser`: tests/conftest.py)
