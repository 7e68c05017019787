"""One JSON object per log line, so notification records can be searched by typeWebhook, instance or id.

Structured fields travel in ``extra={"fields": {...}}``; the formatter merges them into the line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import orjson

FIELDS_ATTR: Final = "fields"


class JsonFormatter(logging.Formatter):
    """Renders a record as a single JSON line (timestamp, level, logger, message, fields, error)."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads may format at once

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
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

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds, e.g. ``2026-11-29T14:23:05.123+00:00``; the part up to the
        second is rendered once per second (a worker writes thousands of lines in one)."""
        second, text = self._second
        if int(created) != second:
            second = int(created)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        millis = min(999, int((created - second) * 1000))
        return f"{text}.{millis:03d}+00:00"


class JsonLineHandler(logging.StreamHandler[TextIO]):
    """Writes each line to the stream as it comes, except inside :func:`batched_lines` on the thread that
    opened it: those lines are written together, in one write, when the batch ends."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._batch_thread: int | None = None
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._batch_thread is None or self._batch_thread != threading.get_ident():
            super().emit(record)
            return
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._batch_thread is not None:  # nested: the outer batch writes
            yield
            return
        self._batch_thread = threading.get_ident()
        try:
            yield
        finally:
            self._batch_thread = None
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        self.acquire()
        try:
            self.stream.write(text)
            self.flush()
        finally:
            self.release()


@contextmanager
def batched_lines() -> Iterator[None]:
    """The lines this thread logs meanwhile are written at the end, in one write (a worker logs one line per
    notification of a batch; one write per line was ~5 % of its CPU). A no-op unless
    :func:`configure_logging` installed the JSON handler."""
    handler = next((one for one in logging.getLogger().handlers if isinstance(one, JsonLineHandler)), None)
    if handler is None:
        yield
        return
    with handler.batch():
        yield


def configure_logging(level: str) -> None:
    """Route every logger (ours, RQ's, uvicorn's) through one JSON handler on stderr."""
    # The JSON line carries no process, thread or source-location fields: skip the getpid() and thread
    # lookups and the caller's frame walk that every LogRecord would otherwise make (the worker writes one
    # record per notification). ``_srcfile = None`` is the documented switch for the last.
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    logging._srcfile = None
    handler = JsonLineHandler(sys.stderr)
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
