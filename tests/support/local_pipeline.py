"""``greenq up`` as the e2e tests run it (nginx -> ingress -> Redis -> workers, real local processes), and
what its handlers saw: the entries the built-in stream sink wrote."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions
from tests.conftest import sample_paths
from tests.support.simulator import identity


@contextmanager
def running_pipeline(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hook_tokens: dict[int, str] | None = None,
    ingress: int = 2,
    nginx: bool = True,
) -> Iterator[LocalPipeline]:
    """``greenq up`` with two workers (process logs in ``tmp_path/logs``). With ``hook_tokens`` the webhook
    accepts those tokens; without, the one ``greenq up`` generates (``token_file``)."""
    if hook_tokens is None:
        monkeypatch.delenv("GREENQ_TOKENS", raising=False)
    else:
        monkeypatch.setenv("GREENQ_TOKENS", ",".join(f"i{n}={token}" for n, token in hook_tokens.items()))
    options = UpOptions(
        ingress=ingress,
        workers=2,
        port=free_port(),
        data_dir=tmp_path,
        nginx=nginx,
        log_dir=tmp_path / "logs",
    )
    local = LocalPipeline(options, out=io.StringIO())
    try:
        local.start()
        yield local
    finally:
        local.stop()


def _stream_entries(redis: Redis) -> Iterator[dict[bytes, bytes]]:
    for stream in cast(list[bytes], redis.keys(f"{keys.EVENT_STREAM_PREFIX}*")):
        for _, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(stream)):
            yield fields


def processed(redis: Redis) -> list[tuple[float, tuple[int, int]]]:
    """(received_at, identity) of every notification the stream sink recorded."""
    return [(float(fields[b"received_at"]), identity(fields[b"body"])) for fields in _stream_entries(redis)]


def stream_ids(redis: Redis) -> list[str]:
    """idMessage of every entry in every event stream (what the stream-sink handler saw)."""
    return [fields[b"id_message"].decode() for fields in _stream_entries(redis)]


def distinct_bodies(count: int) -> Iterator[tuple[str, bytes]]:
    """(idMessage, body) pairs cycling through the documented samples that carry an idMessage."""
    samples = [orjson.loads(path.read_bytes()) for path in sample_paths()]
    samples = [s for s in samples if "idMessage" in s]
    for n, sample in zip(range(count), itertools.cycle(samples), strict=False):
        id_message = f"E2E{n:08d}"
        yield id_message, orjson.dumps({**sample, "idMessage": id_message})
