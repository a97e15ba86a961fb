"""Writes src/tabkeeper_client/_api.py from the API's OpenAPI document (docs/openapi.json).

    python clients/python/generate.py            # rewrite _api.py
    python clients/python/generate.py --check    # exit 1 when _api.py is out of date

Every schema of the document becomes a TypedDict (JSON answers stay plain dicts, typed),
every enum a Literal, and every operation a method named after its operationId
(`invoices.list` -> `client.invoices.list(...)`), once on the sync client's resources and
once, awaited, on the async client's. Path and query parameters are keyword arguments;
a request body is the one positional argument, typed by its schema.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE.parent.parent / "docs" / "openapi.json"
TARGET = HERE / "src" / "tabkeeper_client" / "_api.py"
METHODS = ("get", "put", "post", "delete", "patch")


def class_name(ref_or_name: str) -> str:
    name = ref_or_name.rsplit("/", 1)[-1]
    if name.startswith("tabkeeper__"):  # two models of one name in different modules
        module, _, base = name.rpartition("__")
        name = module.rsplit("_", 1)[-1].capitalize() + base
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def py_type(schema: dict[str, Any]) -> str:
    """The Python annotation of a JSON schema (as text)."""
    if "$ref" in schema:
        return class_name(schema["$ref"])
    if "const" in schema:
        return f"Literal[{schema['const']!r}]"
    if "enum" in schema:
        return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts: list[str] = []
            for option in schema[key]:
                text = py_type(option)
                if text not in parts:
                    parts.append(text)
            return "Any" if "Any" in parts else " | ".join(parts)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(py_type({**schema, "type": k}) for k in kind)
    if kind == "string":
        return "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "null":
        return "None"
    if kind == "array":
        return f"list[{py_type(schema.get('items', {}))}]"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"dict[str, {py_type(extra)}]"
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1:
            return f"dict[str, {py_type(next(iter(patterns.values())))}]"
        return "dict[str, Any]"
    return "Any"


def doc_line(text: str | None) -> str:
    first = (text or "").strip().split("\n\n", 1)[0].replace("\n", " ")
    return first.replace('"""', "'''").replace("\\", "\\\\")


def schema_block(name: str, schema: dict[str, Any]) -> str:
    if schema.get("type") != "object" or "properties" not in schema:
        return f"{name} = {py_type(schema)}\n"
    required = set(schema.get("required", []))
    fields = []
    for field, sub in schema["properties"].items():
        annotation = py_type(sub)
        if field not in required:
            annotation = f"NotRequired[{annotation}]"
        fields.append((field, annotation))
    description = doc_line(schema.get("description") or schema.get("title"))
    if all(f.isidentifier() and not keyword.iskeyword(f) for f, _ in fields):
        lines = [f"class {name}(TypedDict):", f'    """{description}"""', ""]
        lines += [f"    {field}: {annotation}" for field, annotation in fields]
        return "\n".join(lines) + "\n"
    items = ", ".join(f"{field!r}: {annotation!r}" for field, annotation in fields)
    return f"{name} = TypedDict({name!r}, {{{items}}})\n"


def parameter_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in {"body", "idempotency_key"} else name


def operation(path: str, method: str, op: dict[str, Any], asynchronous: bool) -> str:
    verb = op["operationId"].split(".", 1)[-1]
    params: list[str] = []
    path_args: list[tuple[str, str]] = []
    query_args: list[tuple[str, str]] = []
    body = op.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        annotation = py_type(schema)
        if body.get("required"):
            params.append(f"body: {annotation}")
        else:
            params.append(f"body: {annotation} | None = None")
    keywords: list[str] = []
    for parameter in op.get("parameters", []):
        name = parameter_name(parameter["name"])
        annotation = py_type(parameter["schema"])
        if parameter["in"] == "path":
            path_args.append((parameter["name"], name))
            keywords.append(f"{name}: {annotation}")
        elif parameter["in"] == "query":
            query_args.append((parameter["name"], name))
            if parameter.get("required"):
                keywords.append(f"{name}: {annotation}")
            elif "None" in annotation.split(" | "):
                keywords.append(f"{name}: {annotation} = None")
            else:
                keywords.append(f"{name}: {annotation} | None = None")
    keywords.sort(key=lambda k: "=" in k)
    if method == "post":
        keywords.append("idempotency_key: str | None = None")
    signature = ", ".join(["self", *params, *(["*", *keywords] if keywords else [])])
    ok = next(code for code in op["responses"] if code.startswith("2"))
    content = op["responses"][ok].get("content", {})
    binary = "application/json" not in content
    returns = "bytes" if binary else py_type(content["application/json"].get("schema", {}))
    url = path
    for original, name in path_args:
        url = url.replace("{" + original + "}", "{" + name + "}")
    url_text = f'f"{url}"' if path_args else f'"{url}"'
    query = "{" + ", ".join(f"{o!r}: {n}" for o, n in query_args) + "}" if query_args else "None"
    call = "_call_bytes" if binary else "_call"
    summary = doc_line(op.get("summary") or op.get("description")) or op["operationId"]
    lines = [
        f"    {'async ' if asynchronous else ''}def {verb}({signature}) -> {returns}:",
        f'        """`{method.upper()} {path}` ({op["operationId"]}): {summary}"""',
    ]
    arguments = [repr(method.upper()), url_text, f"query={query}"]
    if body is not None:
        arguments.append("body=body")
    if method == "post":
        arguments.append("idempotency_key=idempotency_key")
    awaited = "await " if asynchronous else ""
    result = f"{awaited}self._http.{call}({', '.join(arguments)})"
    if binary or returns == "Any":
        lines.append(f"        return {result}")
    else:
        lines.append(f"        return cast({returns!r}, {result})")
    return "\n".join(lines) + "\n"


def render(document: dict[str, Any]) -> str:
    schemas = document["components"]["schemas"]
    resources: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                if "providers" in op.get("tags", ()):
                    continue  # a payment provider's callbacks, not a platform's call
                resource = op["operationId"].split(".", 1)[0] if "." in op["operationId"] else ""
                resources.setdefault(resource, []).append((path, method, op))
    out = [
        '"""The whole tabkeeper API, one method per operation (generated by',
        "clients/python/generate.py from docs/openapi.json; do not edit: run",
        "`make clients-generate` after `make openapi`).",
        f"API version {document['info']['version']}.",
        '"""',
        "",
        "# fmt: off",
        "# ruff: noqa: E501",
        "from __future__ import annotations",
        "",
        "from typing import Any, Literal, NotRequired, Protocol, TypedDict, cast",
        "",
        "",
        "class _Sync(Protocol):",
        "    def _call(self, method: str, path: str, *, query: dict[str, Any] | None = ...,",
        "              body: Any = ..., idempotency_key: str | None = ...) -> Any: ...",
        "    def _call_bytes(self, method: str, path: str, *, query: dict[str, Any] | None = ...,",
        "                    body: Any = ..., idempotency_key: str | None = ...) -> bytes: ...",
        "",
        "",
        "class _Async(Protocol):",
        "    async def _call(self, method: str, path: str, *, query: dict[str, Any] | None = ...,",
        "                    body: Any = ..., idempotency_key: str | None = ...) -> Any: ...",
        "    async def _call_bytes(self, method: str, path: str, *,",
        "                          query: dict[str, Any] | None = ..., body: Any = ...,",
        "                          idempotency_key: str | None = ...) -> bytes: ...",
        "",
        "",
        "# ------------------------------------------------------------------ schemas",
        "",
    ]
    for name in sorted(schemas):
        out += [schema_block(class_name(name), schemas[name]), ""]
    out += ["# ------------------------------------------------------------------ operations", ""]
    names = []
    for asynchronous in (False, True):
        for resource in sorted(resources):
            cls = ("Async" if asynchronous else "") + class_name(resource or "root") + "Api"
            names.append((asynchronous, resource, cls))
            out += [
                f"class {cls}:",
                f'    """Operations tagged `{resource or "(none)"}`."""',
                "",
                f"    def __init__(self, http: {'_Async' if asynchronous else '_Sync'}) -> None:",
                "        self._http = http",
                "",
            ]
            for path, method, op in resources[resource]:
                out += [operation(path, method, op, asynchronous)]
            out += [""]
    for asynchronous in (False, True):
        base = "AsyncApi" if asynchronous else "Api"
        http = "_Async" if asynchronous else "_Sync"
        root = ("Async" if asynchronous else "") + "RootApi"
        out += [
            f"class {base}({root}):",
            '    """Every resource of the API as an attribute."""',
            "",
        ]
        out += [f"    def __init__(self, http: {http}) -> None:", "        super().__init__(http)"]
        for a, resource, cls in names:
            if a == asynchronous and resource:
                out.append(f"        self.{resource} = {cls}(http)")
        out += ["", ""]
    ids = sorted(op["operationId"] for ops in resources.values() for _, _, op in ops)
    out += [f"OPERATION_IDS = {ids!r}"]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when _api.py is stale")
    args = parser.parse_args()
    text = render(json.loads(DOCUMENT.read_text()))
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run clients/python/generate.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
