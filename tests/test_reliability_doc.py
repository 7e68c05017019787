"""RELIABILITY.md promises that every row names a pytest node id that can be re-run: each one must exist.

The README's references to tests are held to the same rule.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in ("RELIABILITY.md", "README.md"))


def defined_tests() -> dict[str, set[str]]:
    """Test file (relative path) -> the test functions it defines."""
    pattern = re.compile(r"^(?:async )?def (test_\w+)", re.MULTILINE)
    return {
        str(path.relative_to(ROOT)): set(pattern.findall(path.read_text(encoding="utf-8")))
        for path in (ROOT / "tests").rglob("test_*.py")
    }


def test_every_named_test_file_and_function_exists() -> None:
    tests = defined_tests()
    missing: list[str] = []
    for path, name, star in re.findall(r"(tests/[\w/]+\.py)(?:::(test_\w+)(\*)?)?", TEXT):
        names = tests.get(path, set())
        found = any(defined.startswith(name) for defined in names) if star else not name or name in names
        if path not in tests or not found:
            missing.append(f"{path}::{name}{star}")
    assert missing == []


def test_every_shorthand_node_id_names_a_real_test() -> None:
    """``::test_x`` continues the file named before it; it must at least exist in some test file."""
    everywhere = set().union(*defined_tests().values())
    shorthands = re.findall(r"(?<![\w/.])::(test_\w+)", TEXT)
    assert len(shorthands) > 5
    assert sorted(set(shorthands) - everywhere) == []
