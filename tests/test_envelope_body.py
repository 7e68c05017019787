"""The envelope carries any body losslessly, and old and new workers read each other's envelopes safely."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenq.core.contract import (
    BINARY_ENVELOPE_VERSION,
    ENVELOPE_VERSION,
    Envelope,
    EnvelopeError,
    decode_wire,
)
from greenq.core.deadletters.replay import replay_envelope
from greenq.core.deadletters.store import DeadLetter
from greenq.core.outcomes import Outcome
from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, DEFAULT_MAX_BODY_BYTES
from greenq.workers.body import LOG_PREVIEW_CHARS, body_preview, read_body
from tests.conftest import sample_paths


@given(raw=st.binary(max_size=256) | st.text(max_size=64).map(str.encode))
def test_any_bytes_survive_the_wire_exactly(raw: bytes) -> None:
    envelope = Envelope.of_bytes(raw, "webhook")

    again = Envelope.from_wire(envelope.to_wire())

    assert again.raw_body == raw
    assert again == envelope


def test_every_field_set_survives_the_wire() -> None:
    """to_wire spells its fields out: a field added to Envelope but not to the wire fails here."""
    envelope = Envelope.of_bytes(
        b"\xff",
        "replay",
        request_id="r",
        token_id="t",
        attempt=3,
        pending_handlers=("a",),
        over_limit=1,
        replay_of="d",
    )

    wire = envelope.to_wire()

    assert set(wire) == {field.name for field in dataclasses.fields(Envelope)} | {"version"}
    assert Envelope.from_wire(wire) == envelope


def test_utf8_bodies_keep_the_version_1_shape_older_workers_read() -> None:
    wire = Envelope.of_bytes('{"a": "é"}'.encode(), "webhook", request_id="r").to_wire()

    assert wire["version"] == ENVELOPE_VERSION
    assert wire["body"] == '{"a": "é"}'
    assert "body_encoding" not in wire
    assert "over_limit" not in wire


def test_a_body_that_is_not_utf8_is_base64_in_a_version_2_envelope() -> None:
    wire = Envelope.of_bytes(b"\xff\x00{", "webhook").to_wire()

    assert wire["version"] == BINARY_ENVELOPE_VERSION
    assert wire["body_encoding"] == "base64"
    assert base64.b64decode(wire["body"]) == b"\xff\x00{"


def test_an_envelope_written_by_the_previous_release_is_read_unchanged() -> None:
    old_wire = {
        "body": '{"typeWebhook": "x"}',
        "source": "webhook",
        "received_at": 1.5,
        "request_id": "abc",
        "token_id": "tests",
        "attempt": 1,
        "pending_handlers": None,
        "version": 1,
    }

    envelope = Envelope.from_wire(old_wire)

    assert (envelope.raw_body, envelope.body_encoding, envelope.over_limit) == (
        b'{"typeWebhook": "x"}',
        "text",
        None,
    )
    assert envelope.to_wire() == old_wire


#: An envelope as the previous release stored it on its own (a partition stream entry, a dead letter).
OLD_ENCODED = (
    b'{"body":"{\\"typeWebhook\\": \\"x\\"}","source":"webhook","received_at":1.5,"request_id":"abc",'
    b'"token_id":"tests","attempt":2,"pending_handlers":["journal"],"version":1}'
)


def test_an_encoded_envelope_of_the_previous_release_decodes_and_encodes_to_the_same_bytes() -> None:
    envelope = Envelope.decode(OLD_ENCODED)

    assert (envelope.raw_body, envelope.attempt, envelope.pending_handlers) == (
        b'{"typeWebhook": "x"}',
        2,
        ("journal",),
    )
    assert envelope.encode() == OLD_ENCODED
    assert Envelope.decode(OLD_ENCODED.decode()) == envelope  # dead letters hold it as text


def test_encoded_bytes_that_are_not_json_are_kept_as_text_and_refused_as_an_envelope() -> None:
    assert decode_wire(b"\xffnot json") == "\ufffdnot json"
    with pytest.raises(EnvelopeError, match="envelope must be an object, got str"):
        Envelope.decode(b"not json")


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"body_encoding": "rot13"}, "unknown envelope body_encoding"),
        ({"body_encoding": "base64", "body": "not base64!"}, "does not decode"),
    ],
)
def test_a_malformed_body_encoding_is_refused(extra: dict[str, str], problem: str) -> None:
    wire = {**Envelope(body="e30=", source="webhook").to_wire(), "version": 2, **extra}

    with pytest.raises(EnvelopeError, match=problem):
        Envelope.from_wire(wire)


def test_too_large_is_decided_by_the_ingress_mark_without_parsing() -> None:
    envelope = Envelope.of_bytes(b'{"valid": "but marked"}', "webhook", over_limit=10)

    reading = read_body(envelope)

    assert (reading.outcome, reading.data) == (Outcome.TOO_LARGE, None)
    assert reading.reason.startswith("body of 23 bytes is over the 10-byte processing limit")


def test_the_log_preview_of_a_huge_body_is_bounded_and_says_so() -> None:
    envelope = Envelope.of_bytes(b"x" * (LOG_PREVIEW_CHARS * 10), "webhook")

    preview = body_preview(envelope)

    assert len(preview) < LOG_PREVIEW_CHARS + 100
    assert preview.endswith(f"({LOG_PREVIEW_CHARS * 10} characters in all, see the dead letter)")


def test_the_default_limits_leave_ample_room_above_the_largest_documented_notification() -> None:
    largest = max(len(path.read_bytes()) for path in sample_paths())

    assert largest < 4096, "a documented notification grew: revisit DEFAULT_MAX_BODY_BYTES"
    assert largest * 250 < DEFAULT_MAX_BODY_BYTES < DEFAULT_BODY_CAP_BYTES


def test_a_replay_keeps_the_exact_bytes_and_parses_even_a_too_large_body() -> None:
    original = Envelope.of_bytes(b"\xff" * 10, "webhook", over_limit=4, token_id="tests")
    letter = DeadLetter(Outcome.TOO_LARGE, ("too large",), original)

    replayed = replay_envelope(DeadLetter.from_fields("1-0", letter.to_fields()))

    assert replayed.raw_body == original.raw_body
    assert (replayed.source, replayed.over_limit, replayed.token_id) == ("replay", None, "tests")
    assert read_body(replayed).outcome is Outcome.INVALID  # parsed this time: not UTF-8
