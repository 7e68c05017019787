"""The test suite's own shape: shared helpers live in tests/support/, and no module under tests/ imports a
test module, by an import statement or by a ``module:attribute`` string a worker would import.

A test module that imports another one runs that module's import-time code, fixtures and all, in every
importer; a helper that lives in a test module is found by accident.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: What may sit directly in tests/: test modules and pytest's own files. Helpers go into tests/support/.
TOP_LEVEL = re.compile(r"test_\w+\.py|conftest\.py|__init__\.py")
#: "tests.test_x:name", the form GREENQ_ROUTER takes: a worker would import the test module.
TEST_MODULE_REFERENCE = re.compile(r"\btests(\.\w+)*\.test_\w+:")


def imported_modules(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module an import statement names, relative imports resolved against ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imports_of_test_modules(source: str, module: str) -> list[str]:
    """What ``source`` (the module named ``module``) imports or names as ``module:attribute`` that is a
    test module other than itself."""
    package = module.rsplit(".", 1)[0]
    tree = ast.parse(source)
    found = [name for name in imported_modules(tree, package) if name.rsplit(".", 1)[-1].startswith("test_")]
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    found += [text for text in strings if isinstance(text, str) and TEST_MODULE_REFERENCE.search(text)]
    return [name for name in found if not name.startswith((f"{module}:", f"{module}.")) and name != module]


def python_files() -> list[Path]:
    """Every module under tests/ but this one, whose examples name test modules on purpose."""
    paths = (path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)
    return sorted(path for path in paths if path != Path(__file__).resolve())


def module_of(path: Path) -> str:
    return ".".join(("tests", *path.relative_to(TESTS).with_suffix("").parts))


@pytest.mark.parametrize("path", python_files(), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_module_imports_a_test_module(path: Path) -> None:
    assert imports_of_test_modules(path.read_text(encoding="utf-8"), module_of(path)) == []


def test_only_test_modules_sit_directly_in_tests() -> None:
    misplaced = [path.name for path in TESTS.glob("*.py") if not TOP_LEVEL.fullmatch(path.name)]

    assert misplaced == [], "shared helpers belong in tests/support/"


@pytest.mark.parametrize(
    "source",
    [
        "from tests.test_simulator import INSTANCE",
        "import tests.test_processes",
        "from tests import test_hostile",
        "from . import test_hostile",
        "from .test_pipeline import outcome_counts",
        'ROUTER = "tests.test_pipeline:flaky_router"',
    ],
)
def test_the_scan_finds_every_form_of_importing_a_test_module(source: str) -> None:
    assert imports_of_test_modules(source, "tests.test_example") != []


def test_the_scan_lets_support_modules_and_a_modules_own_routers_through() -> None:
    source = (
        "from tests.support.simulator import INSTANCE\nfrom tests.conftest import TOKEN\nimport testfixtures"
    )

    assert imports_of_test_modules(source, "tests") == []
