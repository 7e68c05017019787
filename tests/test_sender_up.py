"""``greenq up --sender`` runs the outbox sender with the rest of the local pipeline, and stops it with it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from redis import Redis

from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions
from tests.support.sender import pace_at_minimum, put, reply, sent_bodies, wait_for_states
from tests.support.simulator import instances_env, running_simulator


def test_greenq_up_with_the_sender_delivers_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREENQ_TOKENS", raising=False)
    with running_simulator(send_delay_ms=1) as (url, control):
        pace_at_minimum(url)
        options = UpOptions(
            ingress=1,
            workers=1,
            port=free_port(),
            data_dir=tmp_path,
            nginx=False,
            log_dir=tmp_path / "logs",
            sender=True,
            child_settings=(("GREENQ_INSTANCES", instances_env(url)), ("GREENQ_SEND_METRICS_PORT", "0")),
        )
        local = LocalPipeline(options, out=io.StringIO())
        try:
            local.start()
            assert [child.role for child in local.children] == ["ingress", "worker", "sender"]
            assert local.redis is not None
            redis = Redis.from_url(local.redis.url)
            entry = reply("from-up", "79001110005@c.us")
            put(redis, 5, entry)
            wait_for_states(redis, [entry], "sent")
        finally:
            local.stop()
        assert sent_bodies(control) == [entry.body]
        [sender] = [child for child in local.children if child.role == "sender"]
        assert sender.process.returncode == 0  # stopped with SIGTERM: calls finished, leases released
