"""JSON log lines (OPS-3): one JSON object a line on stderr, for `tabkeeper serve` and
`tabkeeper worker`.

Every line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `message`;
a line about a request adds `request_id` (and the request log its method, route, path,
status and duration; api/observe.py); a line about a piece of due work adds its kind, id
and outcome (worker/clock.py). An exception adds `error` (its traceback, as text).
Whatever a call passes in `extra=` becomes a member of the line. Credentials never reach
a line: the request log writes the path with secret query parameters redacted
(api/access_log.py) and no header.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """A record as one JSON line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def log_config(level: str = "info") -> dict[str, Any]:
    """A logging configuration (for `logging.config.dictConfig`, and uvicorn's
    `log_config`, which every API process applies when it starts) that writes JSON lines
    to stderr for tabkeeper's and uvicorn's loggers. uvicorn's own access log is left off:
    tabkeeper writes its request log itself (logger `tabkeeper.request`)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "tabkeeper.logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "tabkeeper": quiet,
            "uvicorn": quiet,
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def use_json_logs(level: str = "info") -> None:
    """Apply `log_config` to this process (`tabkeeper worker`)."""
    import logging.config

    logging.config.dictConfig(log_config(level))
