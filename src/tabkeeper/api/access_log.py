"""The access log of `tabkeeper serve --access-log` never holds a credential (OPS-4).

uvicorn logs each request's path with its query string; a portal session URL
(`/portal/enter?token=ps_...`) would put a member's session in the log whole. The filter
here replaces the value of every query parameter named `token` (and any other that
`SECRET_PARAMETERS` names) with `[redacted]` before the line is written.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("token", "key", "secret", "api_key")
_SECRET = re.compile(
    r"(?P<name>(?:^|[?&;])(?:" + "|".join(SECRET_PARAMETERS) + r")=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(path: str) -> str:
    """A request target with the values of secret query parameters replaced."""
    return _SECRET.sub(lambda m: m.group("name") + REDACTED, path)


class RedactSecrets(logging.Filter):
    """Rewrites the request target of uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
        return True


ACCESS_LOGGER = "uvicorn.access"


def redact_access_log() -> None:
    """Put `RedactSecrets` on uvicorn's access logger (once). A logger's filters outlive
    the logging configuration uvicorn applies when it starts (dictConfig replaces
    handlers, not filters), and run before any handler formats the line."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
