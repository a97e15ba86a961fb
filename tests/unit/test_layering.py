"""The layers of DESIGN.md stay apart: entry points (api, portal, cli, worker) call
services; services call repositories and the pure domain.

- the billing tab (`portal`) calls services, never the API's route functions
  (`api.routes`); access checks live in services/access.py;
- `services` imports neither the HTTP API (`api`) nor the billing tab (`portal`);
- `db` does not depend on the payment providers (`payments`);
- `domain` stays pure: tests/unit/test_purity.py; the scenario format
  (`simulation.scenario`, `.steps`, `.timeline`: file parsing) is pure as well: it reads
  no database and calls no service.

Every import in a module counts, a function's own imports included.

The repositories in `db` own the SQL (issue 11): a service module builds no statement and
never calls `session.connection()`, so it imports none of sqlalchemy's statement builders
(`select`, `update`, `insert`, `delete`, `text`, from any sqlalchemy module). The rule
holds for every module of `services`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tabkeeper

PACKAGE = Path(tabkeeper.__file__).parent
RULES = [
    ("portal", "tabkeeper.api.routes"),
    ("services", "tabkeeper.api"),
    ("services", "tabkeeper.portal"),
    ("db", "tabkeeper.payments"),
    *(
        (f"simulation/{module}", forbidden)
        for module in ("scenario", "steps", "timeline")
        for forbidden in ("sqlalchemy", "tabkeeper.db", "tabkeeper.services")
    ),
]


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` (the text of `module`) imports, with each name imported
    from a package counted as a module of it (`from a import b` imports `a` and `a.b`)."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def breaks(imported: set[str], forbidden: str) -> set[str]:
    return {name for name in imported if name == forbidden or name.startswith(forbidden + ".")}


def modules_of(layer: str) -> list[tuple[str, Path]]:
    root = PACKAGE / layer
    paths = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    return [
        (
            "tabkeeper." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts),
            path,
        )
        for path in paths
    ]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[f"{a}-{b}" for a, b in RULES])
def test_a_layer_does_not_import_what_it_must_not(layer: str, forbidden: str) -> None:
    modules = modules_of(layer)
    assert modules, f"no modules found in {layer}"
    wrong = {
        name: sorted(breaks(imported_modules(path.read_text(), name), forbidden))
        for name, path in modules
    }
    assert {name: found for name, found in wrong.items() if found} == {}


@pytest.mark.parametrize(
    ("source", "module", "found"),
    [
        ("from tabkeeper.api.routes.lookup import owned", "tabkeeper.portal.x", True),
        ("from tabkeeper.api import routes", "tabkeeper.portal.x", True),
        ("import tabkeeper.api.routes.subscriptions", "tabkeeper.portal.x", True),
        ("def f():\n    from tabkeeper.api.routes import x\n", "tabkeeper.portal.x", True),
        ("from ..api.routes import lookup", "tabkeeper.portal.x", True),
        ("from tabkeeper.api.context import Api", "tabkeeper.portal.x", False),
        ("from tabkeeper.api_routes import x", "tabkeeper.portal.x", False),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, module: str, found: bool) -> None:
    """The rule above is only as good as its reading of imports: every spelling of one."""
    assert bool(breaks(imported_modules(source, module), "tabkeeper.api.routes")) is found


STATEMENT_BUILDERS = frozenset({"select", "update", "insert", "delete", "text"})
SERVICES = sorted(
    path.stem for path in (PACKAGE / "services").glob("*.py") if path.stem != "__init__"
)


def sql_built(source: str) -> list[str]:
    """Where `source` imports a statement builder of sqlalchemy, names one through an
    imported sqlalchemy module (`sa.select`), or calls `.connection()`."""
    found: list[str] = []
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [
                f"line {node.lineno}: {alias.name} from {node.module}"
                for alias in node.names
                if alias.name in STATEMENT_BUILDERS
            ]
        elif isinstance(node, ast.Import):
            modules.update(
                alias.asname or alias.name
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy"
            )
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (
                node.attr in STATEMENT_BUILDERS
                and isinstance(base, ast.Name)
                and base.id in modules
            ):
                found.append(f"line {node.lineno}: {base.id}.{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "connection"
        ):
            found.append(f"line {node.lineno}: .connection()")
    return found


@pytest.mark.parametrize("module", SERVICES)
def test_a_service_builds_no_sql(module: str) -> None:
    """Issue 11: the statements of `services/<module>.py` are built in `db`."""
    path = PACKAGE / "services" / f"{module}.py"
    assert sql_built(path.read_text()) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from sqlalchemy import select", True),
        ("from sqlalchemy import Select, func", False),
        ("from sqlalchemy.sql import text", True),
        ("from sqlalchemy.dialects.postgresql import insert", True),
        ("def f():\n    from sqlalchemy import delete as d\n", True),
        ("import sqlalchemy as sa\nq = sa.update(t)", True),
        ("import sqlalchemy\nq = sqlalchemy.select(t)", True),
        ("s = session.connection()", True),
        ("from tabkeeper.db import invoices\ninvoices.insert_lines(s, [])", False),
        ("refused.update(counted)", False),
    ],
)
def test_the_sql_check_sees_every_form(source: str, found: bool) -> None:
    """The rule above is only as good as its reading: every spelling of a builder."""
    assert bool(sql_built(source)) is found
