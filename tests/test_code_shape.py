"""The code's shape, measured: short functions and focused modules (issue 12's standard).

Every function and method (``def`` line to its last line, docstring included, decorators not) is at most 40
lines, everywhere. A module is at most 300 lines in the package (greenq/, ingress/, workers/) and bench/,
400 in tests/. The JSON Schemas in workers/schemas are data, not code, and are not measured. A failure
lists every offender as path:line:name, so it says where to split instead of where to raise a limit.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_LINES = 40
#: Folder -> the most lines one of its modules may have.
MODULE_LINES = {"greenq": 300, "ingress": 300, "workers": 300, "bench": 300, "tests": 400}
NOT_MEASURED = (ROOT / "workers" / "schemas",)


def python_files(folder: Path) -> list[Path]:
    """Every module under ``folder``, not following links (greenq/ingress and greenq/workers point at the
    top-level folders, which are measured as themselves)."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        if any(Path(directory).is_relative_to(skipped) for skipped in NOT_MEASURED):
            continue
        found += [Path(directory) / name for name in sorted(files) if name.endswith(".py")]
    return found


def long_functions(source: str, where: str) -> Iterator[str]:
    """path:line:name (and length) of every function or method in ``source`` longer than the limit."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > FUNCTION_LINES:
                yield f"{where}:{node.lineno}:{node.name} ({length} lines)"


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("folder", list(MODULE_LINES))
def test_every_function_is_at_most_40_lines(folder: str) -> None:
    offenders = [
        offender
        for path in python_files(ROOT / folder)
        for offender in long_functions(path.read_text(encoding="utf-8"), relative(path))
    ]

    assert offenders == []


@pytest.mark.parametrize(("folder", "limit"), list(MODULE_LINES.items()))
def test_every_module_stays_within_its_folders_limit(folder: str, limit: int) -> None:
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in python_files(ROOT / folder)}

    assert [
        f"{relative(path)}:1:<module> ({lines} lines)" for path, lines in sizes.items() if lines > limit
    ] == []


def test_every_measured_folder_holds_code() -> None:
    """Guards the walk: a renamed folder must not make these tests pass by measuring nothing."""
    counts = {folder: len(python_files(ROOT / folder)) for folder in MODULE_LINES}

    assert all(count > 0 for count in counts.values()), counts


def test_the_scan_counts_from_def_to_the_last_line_and_names_the_offender() -> None:
    """A 40-line function passes; a 41-line method is reported at its ``def`` line (decorator not counted)."""
    statements = [f"x{n} = {n}" for n in range(39)]
    fits = ["def fits():", *(f"    {line}" for line in statements)]
    too_long = ["class Holder:", "    @staticmethod", "    async def too_long():"]
    too_long += [*(f"        {line}" for line in statements), "        return 1"]
    source = "\n".join([*fits, "", *too_long]) + "\n"

    assert list(long_functions(source, "x.py")) == ["x.py:44:too_long (41 lines)"]
