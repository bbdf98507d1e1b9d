"""The layering of the four packages (README "Layout"), checked on the import graph grimp builds.

Every import counts, also those inside functions: a lazy import is still a dependency.
"""
from __future__ import annotations

from pathlib import Path

import grimp
import pytest

from swift_plugins.editgrpo import REPO_ROOT

PACKAGES = ("templates", "datasets_registry", "rewards", "swift_plugins")
# package -> the other packages of ours it may import
ALLOWED: dict[str, set[str]] = {
    "templates": set(),
    "datasets_registry": {"templates"},
    "rewards": {"templates"},
    "swift_plugins": {"templates", "datasets_registry", "rewards"},
}
ALGORITHM = "swift_plugins.editgrpo.algorithm"
# the pure algorithm takes plain data and constants only: no model, scorer, cache, swift or torch
ALGORITHM_MAY_IMPORT = {"rewards.entities.types", "rewards.entities.affinity", "templates.report"}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=True)


def _ours(graph) -> list[str]:
    return sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)


def test_each_package_imports_only_the_layers_below(graph):
    wrong = []
    for module in _ours(graph):
        package = module.split(".")[0]
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.split(".")[0]
            if target in PACKAGES and target != package and target not in ALLOWED[package]:
                wrong.append(f"{module} -> {imported}")
    assert wrong == []


def test_no_module_of_the_lower_layers_names_the_plugin():
    """`git grep swift_plugins rewards datasets_registry templates` prints nothing (docstrings included)."""
    named = [str(path.relative_to(REPO_ROOT)) for package in ("templates", "datasets_registry", "rewards")
             for path in (REPO_ROOT / package).rglob("*") if path.is_file() and path.suffix in (".py", ".md", ".json")
             and "swift_plugins" in path.read_text(encoding="utf-8", errors="replace")]
    assert named == []


def test_the_algorithm_is_pure(graph):
    algorithm = [m for m in _ours(graph) if m == ALGORITHM or m.startswith(ALGORITHM + ".")]
    assert {f"{ALGORITHM}.{name}" for name in ("advantage", "edits", "matching", "selection", "step")} <= set(algorithm)
    external_ok = {"numpy"}
    wrong = []
    for module in algorithm:
        for imported in graph.find_modules_directly_imported_by(module):
            inside = imported == ALGORITHM or imported.startswith(ALGORITHM + ".")
            if inside or imported in ALGORITHM_MAY_IMPORT or imported.split(".")[0] in external_ok:
                continue
            if imported.split(".")[0] in PACKAGES or not _stdlib(imported):
                wrong.append(f"{module} -> {imported}")
    assert wrong == []


def _stdlib(module: str) -> bool:
    import sys

    return module.split(".")[0] in sys.stdlib_module_names


def test_no_import_circle(graph):
    """No strongly connected component of more than one module (Tarjan on the direct-import graph)."""
    modules = _ours(graph)
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in edges[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert circles == []


def test_nothing_reads_outside_the_repository():
    """No path above the repository root in code, recipes or the Makefile (a user's clone has nothing beside it)."""
    suspicious = []
    for path in REPO_ROOT.rglob("*"):
        if not path.is_file() or any(part in (".git", ".venv", "__pycache__", "build") for part in path.parts):
            continue
        if path.suffix not in (".py", ".sh") and path.name not in ("Makefile", "run"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "../shared" in text or '"shared" /' in text or "parents[2] / \"shared\"" in text:
            suspicious.append(str(path.relative_to(REPO_ROOT)))
    assert suspicious == [str(Path(__file__).relative_to(REPO_ROOT))]  # this test names the patterns
