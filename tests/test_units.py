"""Pure logic of auth, client address resolution, settings and the envelope (no Redis)."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from pydantic import SecretStr

from greenq.cli.ingress import ingress_app, uvicorn_config
from greenq.cli.main import main
from greenq.core.contract import Envelope, EnvelopeError
from greenq.core.settings import IngressSettings, WorkerSettings, parse_tokens
from greenq.ingress.auth import TokenAuthenticator
from greenq.ingress.client_ip import ClientAddressPolicy
from greenq.ingress.errors import Forbidden, Unauthorized

TOKENS = {"a": SecretStr("alpha-token-123"), "b": SecretStr("Bearer beta-token-456")}


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("alpha-token-123", "a"),
        ("Bearer alpha-token-123", "a"),
        ("bearer alpha-token-123", "a"),
        ("Basic alpha-token-123", "a"),
        # A token configured with its prefix matches as sent.
        ("Bearer beta-token-456", "b"),
    ],
)
def test_token_names(header: str, name: str) -> None:
    assert TokenAuthenticator(TOKENS).authenticate([header]) == name


@pytest.mark.parametrize(
    "headers", [[], ["nope"], ["alpha-token-12"], ["alpha-token-123", "alpha-token-123"]]
)
def test_token_refusals(headers: list[str]) -> None:
    with pytest.raises(Unauthorized):
        TokenAuthenticator(TOKENS).authenticate(headers)


def test_open_mode_only_without_tokens() -> None:
    assert TokenAuthenticator({}, allow_unauthenticated=True).authenticate([]) is None
    with pytest.raises(Unauthorized):
        TokenAuthenticator(TOKENS, allow_unauthenticated=True).authenticate([])


def networks(*texts: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(text) for text in texts]


def test_client_address_walks_forwarded_for_from_the_right() -> None:
    policy = ClientAddressPolicy(networks("51.250.84.44"), networks("10.0.0.0/8"))

    assert str(policy.client_address("10.0.0.2", "1.1.1.1, 51.250.84.44, 10.0.0.9", None)) == "51.250.84.44"
    assert str(policy.client_address("10.0.0.2", "10.0.0.7", None)) == "10.0.0.7"
    assert str(policy.client_address("::ffff:51.250.84.44", None, None)) == "51.250.84.44"
    assert policy.client_address("testclient", None, None) is None


def test_allowlist_refuses_unknown_and_unparseable_peers() -> None:
    policy = ClientAddressPolicy(networks("2001:db8::/32"), [])

    assert str(policy.check("2001:db8::1", None, None)) == "2001:db8::1"
    with pytest.raises(Forbidden):
        policy.check("2001:db9::1", None, None)
    with pytest.raises(Forbidden):
        policy.check(None, None, None)


def test_without_allowlist_everyone_passes() -> None:
    assert ClientAddressPolicy([], []).check("198.51.100.1", "1.2.3.4", None) is None  # nothing to check


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("only-one-secret-value", {"default"}),
        ("i1=first-secret,i2=second-secret", {"i1", "i2"}),
        ('{"i1": "first-secret"}', {"i1"}),
    ],
)
def test_token_setting_formats(text: str, names: set[str]) -> None:
    assert set(parse_tokens(text)) == names


@pytest.mark.parametrize("text", ["i1=change-me", "i1=", "=abc", "i1=secret"])
def test_placeholder_or_malformed_tokens_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"placeholder|name=token"):
        parse_tokens(text)


def test_cli_reports_bad_settings_without_echoing_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENQ_TOKENS", "inst=super-secret-value,broken")
    monkeypatch.setenv("GREENQ_REDIS_URL", "redis://127.0.0.1:1/0")

    code = main(["ingress"])

    err = capsys.readouterr().err
    assert code == 2
    assert "invalid settings" in err
    assert "super-secret-value" not in err


def test_cli_names_the_environment_variable_of_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENQ_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("GREENQ_INSTANCES", raising=False)
    monkeypatch.setenv("GREENQ_RECEIVE_TIMEOUT", "2")

    code = main(["reconcile"])

    err = capsys.readouterr().err
    assert code == 2
    assert "GREENQ_INSTANCES: Field required" in err
    assert "GREENQ_RECEIVE_TIMEOUT: " in err


def test_lists_from_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENQ_ALLOWED_IPS", "51.250.84.44, 203.0.113.0/24")
    monkeypatch.setenv("GREENQ_TOKENS", "a=abcdefgh")
    monkeypatch.setenv("GREENQ_RETRY_BACKOFF", "1,2.5")
    monkeypatch.setenv("GREENQ_REDIS_URL", "redis://127.0.0.1:1/0")

    ingress = IngressSettings(_env_file=None)  # type: ignore[call-arg]
    worker = WorkerSettings(_env_file=None)  # type: ignore[call-arg]

    assert [str(n) for n in ingress.allowed_ips] == ["51.250.84.44/32", "203.0.113.0/24"]
    assert worker.retry_backoff == [1.0, 2.5]
    assert [worker.backoff_for(n) for n in (1, 2, 3)] == [1.0, 2.5, 2.5]


def test_each_ingress_process_gets_the_commands_settings_object_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GREENQ_REDIS_URL", "redis://127.0.0.1:1/0")
    settings = IngressSettings(  # type: ignore[call-arg]
        _env_file=None, tokens={"a": SecretStr("abcdefgh")}, port=8123, processes=3, metrics_dir="/run/m"
    )

    # uvicorn's supervisor pickles the config into every process it spawns: this is what one receives.
    config = pickle.loads(pickle.dumps(uvicorn_config(settings)))  # noqa: S301 - our own bytes

    assert (config.port, config.workers, config.factory) == (8123, 3, True)
    assert config.app.func is ingress_app
    assert config.app.args == (settings,)
    assert config.app.args[0].tokens["a"].get_secret_value() == "abcdefgh"


def test_envelope_round_trip_and_refusals() -> None:
    envelope = Envelope(body='{"a": 1}', source="poll", token_id="i1", pending_handlers=("h",))

    assert Envelope.from_wire(envelope.to_wire()) == envelope
    assert envelope.next_attempt(("x",)).attempt == 2
    bad: list[object] = [
        [],
        {"version": 2},
        {"version": 1, "body": 3, "source": "poll"},
        {"version": 1, "body": ""},
    ]
    for wire in bad:
        with pytest.raises(EnvelopeError):
            Envelope.from_wire(wire)
