"""The JSON log line: its timestamp, and the worker's batched writing of a batch's lines."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime

import orjson
import pytest

from greenq.core.logs import JsonFormatter, JsonLineHandler, fields


class CountingStream(io.StringIO):
    """A stream that remembers each write separately."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def record(message: str, created: float = 1_764_000_000.25) -> logging.LogRecord:
    made = logging.LogRecord("greenq.worker", logging.INFO, __file__, 1, message, (), None)
    made.created = created
    made.fields = {"typeWebhook": "incomingMessageReceived"}
    return made


@pytest.mark.parametrize("created", [0.0, 1_700_000_000.0005, 1_764_000_000.9999, 1_764_000_001.123456])
def test_the_timestamp_is_iso_8601_utc_with_milliseconds(created: float) -> None:
    formatter = JsonFormatter()
    formatter.format(record("warm the cache", created - 1))  # a cached earlier second must not leak

    line = orjson.loads(formatter.format(record("x", created)))

    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert line["timestamp"] == expected
    assert line["typeWebhook"] == "incomingMessageReceived"


def handler_on(stream: CountingStream) -> JsonLineHandler:
    handler = JsonLineHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def test_a_batch_writes_its_lines_once_at_the_end_in_order() -> None:
    stream = CountingStream()
    handler = handler_on(stream)

    with handler.batch():
        for n in range(3):
            handler.handle(record(f"notification {n}"))
        assert stream.writes == []

    assert len(stream.writes) == 1
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["notification 0", "notification 1", "notification 2"]


def test_other_threads_write_at_once_during_a_batch() -> None:
    stream = CountingStream()
    handler = handler_on(stream)

    with handler.batch():
        handler.handle(record("batched"))
        other = threading.Thread(target=handler.handle, args=(record("heartbeat"),))
        other.start()
        other.join()
        assert [orjson.loads(text)["message"] for text in stream.writes] == ["heartbeat"]

    assert [orjson.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "heartbeat",
        "batched",
    ]


def test_a_batch_that_raises_still_writes_its_lines_and_later_lines_are_not_batched() -> None:
    stream = CountingStream()
    handler = handler_on(stream)

    def report_and_fail() -> None:
        with handler.batch():
            handler.handle(record("before the error"))
            raise RuntimeError("reporting broke")

    with pytest.raises(RuntimeError):
        report_and_fail()
    handler.handle(record("after"))

    assert [orjson.loads(text)["message"] for text in stream.writes] == ["before the error", "after"]


def test_fields_carry_into_the_line() -> None:
    made = logging.LogRecord("greenq.worker", logging.INFO, __file__, 1, "m", (), None)
    for name, value in fields(idInstance=1101).items():
        setattr(made, name, value)
    assert orjson.loads(JsonFormatter().format(made))["idInstance"] == 1101
