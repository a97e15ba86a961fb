"""The clients' generated parts match docs/openapi.json (INT-2, issue 14): the Python
client's `_api.py` (clients/python/generate.py) and the TypeScript client's `schema.ts`
(openapi-typescript), so a change to the API shows in both clients' diffs too. After
`make openapi` both are regenerated. About 3 s."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tabkeeper_client._api import OPERATION_IDS

from tests.clients.test_typescript_client import PACKAGE, npm_ci

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.json"


def test_python_client_has_every_operation_int_2() -> None:
    """INT-2: _api.py is what generate.py makes of docs/openapi.json today, with a method
    for every operation id but a payment provider's callbacks (tag `providers`: Stripe
    calls them, not a platform)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "clients" / "python" / "generate.py"), "--check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    document = json.loads(DOCUMENT.read_text())
    ids = sorted(
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if "providers" not in op.get("tags", ())
    )
    assert ids == OPERATION_IDS


def test_typescript_schema_matches_the_document_int_2(tmp_path: Path) -> None:
    """INT-2: clients/typescript/src/schema.ts is openapi-typescript's output for
    docs/openapi.json today."""
    node = shutil.which("node")
    assert node, "Node.js 20 or later is needed for the TypeScript client's tests"
    npm_ci()
    fresh = tmp_path / "schema.ts"
    subprocess.run(
        [node, "node_modules/openapi-typescript/bin/cli.js", str(DOCUMENT), "-o", str(fresh)],
        cwd=PACKAGE, check=True, capture_output=True,
    )  # fmt: skip
    assert fresh.read_text() == (PACKAGE / "src" / "schema.ts").read_text(), (
        "clients/typescript/src/schema.ts is out of date: run `make openapi`"
    )
