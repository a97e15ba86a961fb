"""The options every hot-path bench takes: the database, the sizes, and `--smoke` for a
run of seconds (small sizes; any size given on the command line still wins)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

from renewals_databases import Databases, PostgresDatabases, SqliteDatabases

SMOKE: dict[str, Any] = {
    "stored": 20_000, "background": 5, "events": 400, "batches": [10, 100],
    "clients": [1, 2], "seconds": 20.0,
}  # fmt: skip


class Sizes:
    """The sizes of a run: each option's value, else its smoke size under `--smoke`, else
    its default."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # for mypy: the attributes are dynamic
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    @classmethod
    def of(cls, arguments: argparse.Namespace, smoke: dict[str, Any] | None = None) -> Sizes:
        defaults: dict[str, Any] = arguments.defaults
        presets = {**SMOKE, **(smoke or {})} if arguments.smoke else {}
        values = {}
        for name, default in defaults.items():
            given = getattr(arguments, name)
            values[name] = given if given is not None else presets.get(name, default)
        return cls(values)


def options(doc: str | None, **defaults: Any) -> argparse.ArgumentParser:
    """The common options; `defaults` overrides this bench's default sizes."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append",
                        help="repeat for both (default sqlite)")  # fmt: skip
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TABKEEPER_TEST_DATABASE_URL"),
        help="a server the bench may create and drop databases on "
        "(default: $TABKEEPER_TEST_DATABASE_URL, set by scripts/with-postgres)",
    )
    parser.add_argument("--smoke", action="store_true", help="small sizes: a run of seconds")
    sizes = {
        "stored": (int, "events stored before the runs"),
        "background": (int, "organizations the stored events are spread over"),
        "events": (int, "events per run (over all clients)"),
        "seconds": (float, "the most a run may take; a run cut short says so"),
    }
    for name, (kind, text) in sizes.items():
        parser.add_argument(f"--{name}", type=kind, help=text)
    parser.add_argument("--batch", dest="batches", type=int, action="append",
                        help="events a batch (repeat; default 100 and 1000)")  # fmt: skip
    parser.add_argument("--clients", type=int, action="append",
                        help="client processes (repeat; default 1, 4 and 8)")  # fmt: skip
    parser.set_defaults(
        defaults={
            "stored": 1_000_000, "background": 100, "events": 4_000, "seconds": 120.0,
            "batches": [100, 1000], "clients": [1, 4, 8], **defaults,
        }
    )  # fmt: skip
    return parser


def add_size(
    parser: argparse.ArgumentParser, name: str, kind: type, default: Any, text: str
) -> None:
    """A size of one bench, with `--smoke` applying to it like the others."""
    parser.add_argument(f"--{name}", type=kind, help=f"{text} (default {default})")
    parser.set_defaults(defaults={**parser.get_default("defaults"), name: default})


def databases_of(arguments: argparse.Namespace) -> Iterator[Databases]:
    for name in arguments.database or ["sqlite"]:
        if name == "sqlite":
            yield SqliteDatabases()
            continue
        if not arguments.postgres_url:
            raise SystemExit("PostgreSQL needs --postgres-url or TABKEEPER_TEST_DATABASE_URL")
        yield PostgresDatabases(arguments.postgres_url)
