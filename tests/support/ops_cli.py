"""Shared by the operator-command tests: run ``greenq`` commands in-process, make dead letters."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.cli import ops as ops_cli
from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters import DeadLetter
from greenq.core.outcomes import Outcome
from greenq.local.redis_server import LocalRedis
from tests.conftest import SAMPLES_DIR

REPO = Path(__file__).resolve().parent.parent
TEXT = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_text()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


class Terminal(io.StringIO):
    """Stdin of an interactive session: a TTY with the operator's answer typed in."""

    def isatty(self) -> bool:
        return True


Cli = Callable[..., Result]


@pytest.fixture
def cli(
    redis_server: LocalRedis,
    redis_conn: Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """Runs ``greenq <args>`` in-process (the commands ops_cli registers), settings from the environment."""
    for name in list(os.environ):
        if name.startswith("GREENQ_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GREENQ_REDIS_URL", redis_server.url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    # The commands install a JSON log handler on the root logger; keep pytest's capture intact instead.
    monkeypatch.setattr("greenq.cli.context.configure_logging", lambda level: None)

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO("") if stdin is None else Terminal(stdin))
        parser = argparse.ArgumentParser(prog="greenq")
        ops_cli.register(parser.add_subparsers(required=True))
        capsys.readouterr()
        namespace = parser.parse_args(list(args))
        code = int(namespace.run(namespace))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def letter(outcome: Outcome = Outcome.INVALID, body: str = TEXT, reason: str = "old reason") -> DeadLetter:
    return DeadLetter(
        outcome=outcome,
        reasons=(reason,),
        envelope=Envelope(body=body, source="webhook", token_id="instance-a"),
        type_webhook="incomingMessageReceived",
        id_instance=1234,
    )


def enqueue(redis_conn: Redis, body: str | dict[str, Any]) -> str:
    """One notification on the queue, as the ingress would put it; returns its request id."""
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    envelope = Envelope(body=text, source="webhook", token_id="instance-a")
    NotificationQueue(redis_conn).enqueue([envelope])
    return envelope.request_id


def add_at(redis_conn: Redis, when: datetime, dead_letter: DeadLetter) -> str:
    """A dead letter written at ``when`` (stream ids are millisecond timestamps)."""
    entry_id = f"{int(when.timestamp() * 1000)}-0"
    redis_conn.xadd(keys.DEAD_LETTER_STREAM, dead_letter.to_fields(), id=entry_id)  # type: ignore[arg-type]
    return entry_id
