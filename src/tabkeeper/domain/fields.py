"""Reading documents (catalog, pricing configs, settings) field by field.

Every reader takes the path of the value in its document and raises InvalidConfig naming
that path ("plans.starter.price: expected a decimal string such as \"49.00\""), so a person
can find the mistake. Numbers come as decimal strings or whole numbers, never floats: YAML
reads `0.10` as a float, which could already be inexact, so it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from tabkeeper.domain.errors import InvalidConfig

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")


def at(path: str, key: str | int) -> str:
    """The path of `key` inside `path`: at("plans", "starter") == "plans.starter"."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def mapping(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidConfig(path, "expected a mapping of names to values")
    return value


def only_keys(data: Mapping[str, object], allowed: Iterable[str], path: str) -> None:
    """Refuse keys that the document does not define (a typo must not pass silently)."""
    known = set(allowed)
    for key in data:
        if key not in known:
            raise InvalidConfig(
                at(path, key), f"unknown field; expected one of {', '.join(sorted(known))}"
            )


def required(data: Mapping[str, object], key: str, path: str) -> object:
    if key not in data or data[key] is None:
        raise InvalidConfig(at(path, key), "is required")
    return data[key]


def decimal(value: object, path: str, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    """A decimal string ("0.10") or a whole number, at least `minimum` (None: any)."""
    whole_number = isinstance(value, int) and not isinstance(value, bool)
    if whole_number or (isinstance(value, str) and _DECIMAL.fullmatch(value)):
        number = Decimal(value)  # type: ignore[arg-type]
    else:
        raise InvalidConfig(path, f'expected a decimal string such as "0.10", got {value!r}')
    if minimum is not None and number < minimum:
        raise InvalidConfig(path, f"must be at least {minimum}, got {value}")
    return number


def positive_decimal(value: object, path: str) -> Decimal:
    number = decimal(value, path)
    if number <= 0:
        raise InvalidConfig(path, f"must be greater than 0, got {value}")
    return number


def whole(value: object, path: str, *, minimum: int = 0) -> int:
    """A whole number of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(path, f"expected a whole number, got {value!r}")
    if value < minimum:
        raise InvalidConfig(path, f"must be at least {minimum}, got {value}")
    return value


def flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidConfig(path, f"expected true or false, got {value!r}")
    return value


def text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfig(path, f"expected a non-empty text, got {value!r}")
    return value


def name(value: object, path: str) -> str:
    """An identifier: lower-case letters, digits, '_', '-', '.'; at most 64 characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidConfig(
            path, f"{value!r} is not a valid name (lower-case letters, digits, _ - .)"
        )
    return value


def names(value: object, path: str) -> tuple[str, ...]:
    """A list of distinct names."""
    if not isinstance(value, list | tuple):
        raise InvalidConfig(path, f"expected a list of names, got {value!r}")
    result = tuple(name(item, at(path, i)) for i, item in enumerate(value))
    for i, item in enumerate(result):
        if item in result[:i]:
            raise InvalidConfig(at(path, i), f"{item!r} is listed twice")
    return result


def choice(value: object, options: Iterable[str], path: str, what: str) -> str:
    allowed = sorted(options)
    if not isinstance(value, str) or value not in allowed:
        raise InvalidConfig(path, f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value
