"""The domain stays pure (DESIGN.md): it imports nothing from sqlalchemy, fastapi or
pydantic, does no I/O, and never reads the system clock."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import tabkeeper.domain

DOMAIN = Path(tabkeeper.domain.__file__).parent
SOURCES = sorted(DOMAIN.rglob("*.py"))
FORBIDDEN_PACKAGES = {
    "sqlalchemy",
    "fastapi",
    "pydantic",
    "pydantic_settings",
    "starlette",
    "alembic",
    "psycopg",
    "uvicorn",
    "jinja2",
    "httpx",
    "yaml",
    "babel",
}
ALLOWED_MODULES = {
    "__future__",
    "collections",
    "dataclasses",
    "decimal",
    "enum",
    "fractions",
    "math",
    "re",
    "types",
    "typing",
    "bisect",
    "itertools",
    "functools",
    "datetime",
    "abc",
    "operator",
    "calendar",
    "heapq",
    "tabkeeper",
}
CLOCK_READS = {
    "now",
    "utcnow",
    "today",
    "time",
    "monotonic",
    "perf_counter",
    "time_ns",
    "monotonic_ns",
    "localtime",
    "gmtime",
}
IO_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_domain_imports_only_the_standard_library_it_needs() -> None:
    assert SOURCES, "no domain sources found"
    for path in SOURCES:
        imported = _imports(ast.parse(path.read_text(), str(path)))
        assert not imported & FORBIDDEN_PACKAGES, (
            f"{path.name} imports {imported & FORBIDDEN_PACKAGES}"
        )
        assert imported <= ALLOWED_MODULES, f"{path.name} imports {imported - ALLOWED_MODULES}"


def test_domain_reads_no_clock_and_does_no_io() -> None:
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute):
                    assert func.attr not in CLOCK_READS, (
                        f"{path.name}:{node.lineno} calls .{func.attr}()"
                    )
                elif isinstance(func, ast.Name):
                    assert func.id not in IO_CALLS | CLOCK_READS, (
                        f"{path.name}:{node.lineno} calls {func.id}()"
                    )


def test_importing_the_domain_loads_no_framework() -> None:
    modules = [
        "tabkeeper.domain." + str(p.relative_to(DOMAIN).with_suffix("")).replace("/", ".")
        for p in SOURCES
    ]
    modules = [m.removesuffix(".__init__") for m in modules]
    script = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    loaded = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script], check=True, capture_output=True, text=True
            ).stdout
        )
    )
    assert not loaded & FORBIDDEN_PACKAGES, (
        f"importing the domain loads {loaded & FORBIDDEN_PACKAGES}"
    )
