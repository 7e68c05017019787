"""PollerSettings: instances from ``name=apiUrl|idInstance|token`` pairs or JSON, GREENQ_* variables, and
refusals (in the settings and from ``greenq poll``) that never echo a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.poller import settings_from
from tests.support.processes import clean_env, run_greenq


def test_instances_parse_from_pairs_and_from_json() -> None:
    pairs = settings_from(
        instances="main=https://1101.api.green-api.com/|1101000001|abc123, second=http://127.0.0.1:9|2|def456"
    )
    from_json = settings_from(
        instances='[{"apiUrl": "https://h.example", "idInstance": 1101000001, "apiTokenInstance": "abc123"}]'
    )

    assert [(i.name, i.api_url, i.id_instance) for i in pairs.instances] == [
        ("main", "https://1101.api.green-api.com", "1101000001"),
        ("second", "http://127.0.0.1:9", "2"),
    ]
    assert pairs.instances[0].api_token.get_secret_value() == "abc123"
    assert from_json.instances[0].name == "1101000001"


def test_settings_come_from_greenq_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENQ_INSTANCES", "main=https://api.green-api.com|1101000001|abc123")
    monkeypatch.setenv("GREENQ_RECEIVE_TIMEOUT", "30")
    monkeypatch.setenv("GREENQ_POLL_BACKOFF_CAP", "12")
    monkeypatch.setenv("GREENQ_POLLER_METRICS_PORT", "9200")

    settings = settings_from()

    assert (settings.receive_timeout, settings.poll_backoff_cap, settings.poller_metrics_port) == (
        30,
        12.0,
        9200,
    )


@pytest.mark.parametrize(
    "value",
    [
        "main=https://api.green-api.com|1101000001|s3cret/Token",  # not a path segment
        "main=https://api.green-api.com|s3cretToken",  # a part missing
        "main=ftp://api.green-api.com|1101000001|s3cretToken",  # not http(s)
        "main=https://api.green-api.com|11x01|s3cretToken",  # idInstance not digits
        '[{"apiUrl": "https://h.example", "idInstance": 1, "apiTokenInstance": "s3cretToken", "x": 1}]',
        '[{"apiUrl": "https://api.green-api.com", "apiTokenInstance": "s3cretToken"',  # broken JSON
    ],
)
def test_bad_instances_are_refused_without_echoing_the_token(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from(instances=value)

    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value.errors(include_input=False))


def test_greenq_poll_refuses_bad_instances_without_echoing_the_token(tmp_path: Path) -> None:
    env = clean_env(GREENQ_INSTANCES="main=https://api.green-api.com|1101000001|s3cret/Token")

    result = run_greenq(["poll"], env, cwd=tmp_path)

    assert result.returncode == 2
    assert "invalid settings" in result.stderr
    assert "instance 'main'" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_receive_timeout_must_be_5_to_60() -> None:
    for bad in (4, 61):
        with pytest.raises(ValidationError):
            settings_from(instances="a=http://h|1|tok1", receive_timeout=bad)
