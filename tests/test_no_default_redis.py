"""No greenq client ever reaches a Redis it was not configured with (e.g. whatever listens on 6379)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from greenq.core.settings import UP_ENV_FILE
from greenq.ingress.enqueue import RecorderMisuse, recording_client
from tests.support.processes import clean_env, run_greenq


def greenq_in(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``greenq ARGS`` run from ``folder`` with no GREENQ_* variable but ``env``."""
    return run_greenq(args, clean_env(**env), cwd=folder)


def test_the_ingress_recording_client_refuses_to_connect() -> None:
    client = recording_client()

    with pytest.raises(RecorderMisuse):
        client.ping()


@pytest.mark.parametrize("command", [["status"], ["dlq", "list"], ["worker", "--burst"], ["ingress"]])
def test_commands_that_need_redis_refuse_to_start_without_its_url(command: list[str], tmp_path: Path) -> None:
    # tmp_path has no .env and no greenq up env file
    result = greenq_in(tmp_path, *command, GREENQ_TOKENS="t=abcdefgh12345")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "GREENQ_REDIS_URL" in result.stderr
    assert UP_ENV_FILE in result.stderr


def test_a_running_greenq_up_env_file_is_read_by_the_operator_commands(tmp_path: Path) -> None:
    (tmp_path / ".greenq").mkdir()
    (tmp_path / UP_ENV_FILE).write_text("GREENQ_REDIS_URL=redis://127.0.0.1:1/0\n")

    result = greenq_in(tmp_path, "status")

    assert result.returncode == 3, result.stdout + result.stderr  # it tried that Redis: port 1 refuses
    assert "Redis error" in result.stderr
