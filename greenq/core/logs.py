"""One JSON object per log line, so notification records can be searched by typeWebhook, instance or id.

Structured fields travel in ``extra={"fields": {...}}``; the formatter merges them into the line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

FIELDS_ATTR: Final = "fields"


class JsonFormatter(logging.Formatter):
    """Renders a record as a single JSON line (timestamp, level, logger, message, fields, error)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str) -> None:
    """Route every logger (ours, RQ's, uvicorn's) through one JSON handler on stderr."""
    # The JSON line carries no process or thread fields: skip the getpid() and thread lookups that every
    # LogRecord would otherwise make (the worker writes one record per notification).
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("rq.worker", "rq.scheduler", "uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    # One access line per webhook at 5,000/s is noise; nginx keeps the access log.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` argument carrying structured fields for :class:`JsonFormatter`."""
    return {FIELDS_ATTR: values}
