"""One exception tree for tabkeeper.

    TabkeeperError                 code: a stable machine code; message: for a person
    ├── InvalidInput               bad input from a caller; nothing was changed
    │   ├── InvalidConfig          a catalog, pricing or settings document; names the path
    │   ├── UnknownCurrency        not an ISO 4217 code tabkeeper knows
    │   └── CurrencyMismatch       money of two currencies in one operation
    ├── IllegalTransition          a lifecycle event that the state does not allow
    ├── Refused                    a valid request that the rules refuse (capacity, ...)
    ├── NotFound                   no such object for this caller (also another
    │                              organization's: 404, never a hint that it exists)
    ├── Forbidden                  the caller's role may not do this (ACL-1)
    └── Unauthorized               no valid API key or portal session

Entry points turn these into HTTP problem+json, CLI messages or simulate refusals; a
TabkeeperError never carries a stack trace to a client.
"""

from __future__ import annotations


class TabkeeperError(Exception):
    """Base of every error tabkeeper raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(TabkeeperError):
    code = "invalid_input"


class InvalidConfig(InvalidInput):
    """A document (catalog, pricing config, settings) is wrong at `path`."""

    code = "invalid_config"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"


class IllegalTransition(TabkeeperError):
    code = "illegal_transition"

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"a subscription in state '{state}' cannot take event '{event}'")
        self.state = state
        self.event = event


class Refused(TabkeeperError):
    code = "refused"


class NotFound(TabkeeperError):
    code = "not_found"


class Forbidden(TabkeeperError):
    code = "forbidden"


class Unauthorized(TabkeeperError):
    code = "unauthorized"
