"""The package's shape: one import root, floors that never import upwards, no import cycles.

The floors are declared once, in pyproject.toml's ``[tool.importlinter]``; import-linter checks them. These
tests run it on the real tree, show that it catches an upward import (through the ingress/ and workers/
links too), and check what import-linter does not: no module cycles inside a floor, no import of the old
top-level package names, and a wheel with exactly one top-level package.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: Top-level names greenq used before it had one import root; nothing may import them any more.
OLD_ROOTS = frozenset({"ingress", "workers", "poller", "simulator"})


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_floors_hold_in_the_real_tree() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def _copy_of_the_tree(destination: Path) -> Path:
    destination.mkdir(exist_ok=True)
    for name in ("greenq", "ingress", "workers", "bench"):
        shutil.copytree(
            ROOT / name, destination / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", destination)
    return destination


@pytest.mark.parametrize(
    ("module", "upward_import"),
    [
        ("greenq/core/keys.py", "import greenq.workers.jobs"),
        ("workers/jobs.py", "import greenq.cli.main"),  # the real folder behind the greenq/workers link
        ("ingress/app.py", "import greenq.workers.router"),  # two packages on one floor
    ],
)
def test_an_upward_import_breaks_the_floors(tmp_path: Path, module: str, upward_import: str) -> None:
    tree = _copy_of_the_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{upward_import}  # noqa\n", encoding="utf-8")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "0 kept, 1 broken" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Each import ``a -> b`` for which ``b`` also reaches ``a``: an edge on an import cycle."""
    return [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if graph.chain_exists(importer=imported, imported=module)
    ]


def test_no_module_imports_another_in_a_cycle() -> None:
    graph = grimp.build_graph("greenq", cache_dir=None)
    assert len(graph.modules) > 90  # the links were followed: ingress and workers are in the graph
    assert "greenq.ingress.app" in graph.modules
    assert "greenq.workers.jobs" in graph.modules
    assert _cycles(graph) == []


def _imported_roots(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def test_nothing_imports_the_old_top_level_names() -> None:
    """In a checkout the repository root is on sys.path, so ``import workers`` would still work here and
    load a second copy of every module; installed, it fails. Nothing may rely on it."""
    sources = {
        path.resolve()
        for folder in ("greenq", "ingress", "workers", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
    }
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {root}"
        for path in sorted(sources)
        for line, root in _imported_roots(path)
        if root in OLD_ROOTS
    ]
    assert offenders == []


@pytest.mark.slow
def test_the_wheel_installs_exactly_one_top_level_package(tmp_path: Path) -> None:
    # Built from a copy (as Docker's build context is), so the build leaves nothing in the checkout.
    source = _copy_of_the_tree(tmp_path / "source")
    shutil.copy(ROOT / "README.md", source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("greenq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"greenq"}
    for member in ("greenq/ingress/app.py", "greenq/workers/jobs.py", "greenq/workers/schemas/common.json"):
        assert member in names
    assert "greenq/local/templates/nginx.conf.tmpl" in names
