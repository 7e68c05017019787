"""Hostile bodies against the ingress, in process (starlette TestClient, real Redis): random bytes, JSON of
any kind, invalid UTF-8, absurd depths, sizes and numbers, broken ``Content-Length``. Every authenticated body
is stored exactly and answered 200 up to the hard cap, 413 past it.

The workers' handling of these bodies (``invalid``/``too_large`` dead letters) is tested in
``tests/test_body_classes.py``. Example counts are fixed so the file stays fast.
"""

from __future__ import annotations

import json
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.hostile import AUTH, DEFAULT_CAP, DEFAULT_LIMIT, FUZZ, SMALL_CAP, SMALL_LIMIT, Probe

pytestmark = pytest.mark.usefixtures("hostile_tally")  # GREENQ_HOSTILE_TALLY: the per-class counts


random_bodies = st.one_of(
    st.binary(max_size=512),
    st.binary(min_size=SMALL_LIMIT - 8, max_size=SMALL_LIMIT + 8),  # around the processing limit
    st.binary(min_size=SMALL_CAP - 8, max_size=SMALL_CAP + 8),  # around the hard cap
    st.binary(min_size=1, max_size=64).map(b"{".__add__),  # looks like an object, mostly is not
    st.tuples(st.binary(max_size=16), st.binary(max_size=16)).map(
        lambda ends: ends[0] + b'{"a": 1}' + ends[1]
    ),
)


@FUZZ
@given(raw=random_bodies)
def test_random_bytes_are_stored_exactly_up_to_the_cap(small_probe: Probe, raw: bytes) -> None:
    status = small_probe.send("random bytes", raw)

    assert status == (413 if len(raw) > SMALL_CAP else 200)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@FUZZ
@given(value=json_values, ascii_only=st.booleans(), pad=st.sampled_from(["", " ", "\n\t\r "]))
def test_json_documents_of_any_kind_are_stored(
    small_probe: Probe, value: object, ascii_only: bool, pad: str
) -> None:
    raw = f"{pad}{json.dumps(value, ensure_ascii=ascii_only)}{pad}".encode()

    status = small_probe.send("json documents", raw)

    assert status == (413 if len(raw) > SMALL_CAP else 200)


BAD_UTF8: Final = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",  # bad continuation
    b"\xa0\xa1",  # lone continuation bytes
    b"\xe2\x82",  # truncated 3-byte sequence
    b"\xf0\x28\x8c\xbc",
    b"\xf8\xa1\xa1\xa1\xa1",  # 5-byte form
    b"\xc0\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # UTF-16 surrogate encoded in UTF-8
    b"\xf4\x90\x80\x80",  # above U+10FFFF
)


@FUZZ
@given(
    before=st.text(max_size=20),
    bad=st.sampled_from(BAD_UTF8),
    after=st.text(max_size=20),
    in_key=st.booleans(),
)
def test_invalid_utf8_anywhere_in_an_object_is_stored_exactly(
    small_probe: Probe, before: str, bad: bytes, after: str, in_key: bool
) -> None:
    literal = json.dumps(before, ensure_ascii=False)[:-1].encode() + bad + json.dumps(after)[1:].encode()
    raw = b"{" + literal + b': "v"}' if in_key else b'{"k": ' + literal + b"}"

    assert small_probe.send("invalid utf-8", raw) == 200


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return b'{"a": ' + opener * depth + closer * depth + b"}"


EXPLICIT_BODIES: Final[list[tuple[str, bytes, int]]] = [
    ("deep array 100k unclosed", b"[" * 100_000, 200),
    ("deep object 100k unclosed", b'{"a":' * 100_000, 200),
    ("deep array 100k balanced", b"[" * 100_000 + b"]" * 100_000, 200),
    ("object holding 100k-deep array", nested(100_000), 200),
    ("object holding 1100-deep array", nested(1100), 200),
    ("object holding 1000-deep array", nested(1000), 200),
    ("exponent 1e999999", b'{"a": 1e999999}', 200),
    ("exponent 1e-999999", b'{"a": 1e-999999}', 200),
    ("integer of 100k digits", b'{"a": 1' + b"0" * 100_000 + b"}", 200),
    ("integer of 300 digits", b'{"a": 1' + b"0" * 300 + b"}", 200),
    ("integer above uint64", b'{"a": 123456789012345678901234567890}', 200),
    ("string of 1 MiB", b'{"s": "' + b"x" * (DEFAULT_LIMIT - 9) + b'"}', 200),
    ("string of 2 MiB (over the processing limit)", b'{"s": "' + b"x" * (2 * DEFAULT_LIMIT) + b'"}', 200),
    ("string past the hard cap", b'{"s": "' + b"x" * DEFAULT_CAP + b'"}', 413),
    ("key of 512 KiB", b'{"' + b"k" * (512 * 1024) + b'": 1}', 200),
    ("50k keys", b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(50_000)) + b"}", 200),
    ("duplicate keys", b'{"typeWebhook": "a", "typeWebhook": "b", "x": 1, "x": 2}', 200),
    ("escaped NUL", b'{"a": "\\u0000"}', 200),
    ("raw control character", b'{"a": "\x01"}', 200),
    ("lone surrogate escape", b'{"a": "\\ud800"}', 200),
    ("UTF-8 BOM", b"\xef\xbb\xbf{}", 200),
    ("NaN", b'{"a": NaN}', 200),
    ("Infinity", b'{"a": Infinity}', 200),
    ("comment", b'{"a": 1 /* c */}', 200),
    ("trailing comma", b'{"a": 1,}', 200),
    ("two objects", b"{} {}", 200),
    ("trailing NUL", b"{}\x00", 200),
    ("single quotes", b"{'a': 1}", 200),
    ("empty", b"", 200),
    ("blank", b" \n\t ", 200),
    ("null", b"null", 200),
    ("array", b"[{}]", 200),
    ("string", b'"{}"', 200),
    ("UTF-16 encoded object", '{"a": 1}'.encode("utf-16"), 200),
]


@pytest.mark.parametrize(
    ("body", "status"), [case[1:] for case in EXPLICIT_BODIES], ids=[case[0] for case in EXPLICIT_BODIES]
)
def test_explicit_hostile_bodies(probe: Probe, body: bytes, status: int) -> None:
    assert probe.send("explicit bodies", body) == status


def test_bodies_up_to_the_hard_cap_are_stored_one_byte_over_is_413(probe: Probe) -> None:
    def body(size: int) -> bytes:
        return b'{"s": "' + b"y" * (size - 9) + b'"}'

    assert len(body(DEFAULT_CAP)) == DEFAULT_CAP
    for size in (DEFAULT_LIMIT, DEFAULT_LIMIT + 1, DEFAULT_CAP - 1, DEFAULT_CAP):
        assert probe.send("limit and cap edges", body(size)) == 200
    assert probe.send("limit and cap edges", body(DEFAULT_CAP + 1)) == 413


@pytest.mark.parametrize(
    ("value", "status"),
    [("abc", 400), ("1e3", 400), ("9" * 40, 413), (str(DEFAULT_CAP + 1), 413)],
    ids=["letters", "float", "40 digits", "cap+1"],
)
def test_absurd_content_length_is_refused_before_reading(probe: Probe, value: str, status: int) -> None:
    headers = [*AUTH, ("Content-Length", value)]

    assert probe.send("content-length", b'{"a": 1}', headers=headers) == status
