"""INT-3: every runtime import of the package is a declared dependency. Each module under
src/tabkeeper is read (imports at any level, `if TYPE_CHECKING:` blocks left out: they
never run); each top-level name that is neither the standard library nor tabkeeper
itself must come from a distribution named in pyproject's `dependencies`. (That the
built wheel then installs and runs in a clean environment is scripts/check-wheel's part
of `make test`.)"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "tabkeeper"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normal(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) for d in project["dependencies"]}


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if _type_checking(node):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return found


def test_int3_every_runtime_import_is_a_declared_dependency() -> None:
    names: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for name in _imports(ast.parse(path.read_text(), str(path))):
            names.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    third_party = {
        n: where
        for n, where in names.items()
        if n not in sys.stdlib_module_names and n not in ("tabkeeper", "__future__")
    }
    owners = packages_distributions()
    declared = _declared()
    undeclared = {
        name: sorted(where)[:3]
        for name, where in third_party.items()
        if not any(_normal(d) in declared for d in owners.get(name, [name]))
    }
    assert not undeclared, f"imported but not declared in pyproject dependencies: {undeclared}"
