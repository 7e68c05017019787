"""The fast (Rust) and reference (Python) schema engines must agree on every verdict.

The fast engine decides validity on the hot path; the Python one explains failures. If they ever
disagreed, a notification could be dead-lettered with no reason, or pass when it should not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenq.core.notification import unwrap
from greenq.workers.validation import NotificationValidator

TESTS = Path(__file__).parent
EXAMPLES = sorted(TESTS.glob("samples/*.json")) + sorted(TESTS.glob("fixtures/notifications/*.json"))
FAST = NotificationValidator()
REFERENCE = NotificationValidator(fast=False)


def load(path: Path) -> Any:
    return unwrap(orjson.loads(path.read_bytes()))


def key_paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside a notification (object keys and list indexes)."""
    paths: list[tuple[str | int, ...]] = []
    children: list[tuple[str | int, object]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    for key, value in children:
        paths.append((*prefix, key))
        paths.extend(key_paths(value, (*prefix, key)))
    return paths


def replaced(document: Any, path: tuple[str | int, ...], value: object) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced, or removed when ``value`` is ``...``."""
    result = copy.deepcopy(document)
    node = result
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_engines_agree_on_documented_examples(path: Path) -> None:
    document = load(path)

    assert FAST.validate(document) == REFERENCE.validate(document)
    assert FAST.validate(document).status == "valid"


JSON_VALUES = st.one_of(
    st.just(...),  # remove the field
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), value=JSON_VALUES)
def test_engines_agree_on_mutated_examples(data: st.DataObject, value: object) -> None:
    document = load(data.draw(st.sampled_from(EXAMPLES)))
    path = data.draw(st.sampled_from(key_paths(document)))
    mutated = replaced(document, path, value)

    fast, reference = FAST.validate(mutated), REFERENCE.validate(mutated)

    assert fast == reference
