"""The TypeScript client (clients/typescript, @tabkeeper/client) against a live
`tabkeeper serve` on 127.0.0.1 (SQLite; INT-1..3, issue 14): this test starts the server
(conftest.py's `live`), builds the client with tsc and runs its tests with Node's own test
runner (`node --test clients/typescript/test/`), which make an organization, subscribe it
through the sandbox, track 10,000 events with a lost answer (counted once), check, start
a session, consume credits with a lost answer (taken once) and verify a webhook.
`npm ci` runs first when clients/typescript/node_modules is missing. About 10 s."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import Live
from tests.conftest import POSTGRES_URL

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def npm_ci() -> None:
    if (PACKAGE / "node_modules" / ".package-lock.json").exists():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the TypeScript client's tests (apt-get install npm)"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PACKAGE, check=True
    )


@pytest.mark.skipif(bool(POSTGRES_URL), reason="the TypeScript client runs on SQLite only")
def test_typescript_client_against_a_live_server_int_1(live: Live) -> None:
    """INT-1, USE-1, LIM-3, CRD-1, NOT-1: the TypeScript client's node tests pass against
    this server, none skipped."""
    node = shutil.which("node")
    assert node, "Node.js 20 or later is needed for the TypeScript client's tests"
    npm_ci()
    subprocess.run(
        [node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], cwd=PACKAGE, check=True
    )
    env = {**os.environ, "TABKEEPER_TEST_URL": live.base_url, "TABKEEPER_TEST_KEY": live.key}
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", "test/"],
        cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    counts = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", output, re.M))
    assert counts == {"pass": "7", "fail": "0", "skipped": "0", "cancelled": "0"}, output
