"""The layering of docs/design.md stays: import-linter's contract (setup.cfg) holds, no
two packages import each other in a cycle, and the bottom layers load little."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import cwl_crunch

REPO = Path(cwl_crunch.__file__).parent.parent


def package_graph() -> dict[str, set[str]]:
    """Which cwl_crunch package imports which (modules folded into their package)."""
    graph = grimp.build_graph("cwl_crunch", include_external_packages=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = module.split(".")[:2]
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.split(".")[:2]
            if len(source) == 2 and len(target) == 2 and source != target:
                edges.setdefault(source[1], set()).add(target[1])
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of packages (first package repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(edges.get(node, ())):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(edges):
        found = visit(start, [])
        if found:
            return found
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_two_packages_import_each_other_in_a_cycle() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, "package cycle: " + " -> ".join(cycle or [])


def test_the_import_linter_contract_holds() -> None:
    command = shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]'")
    done = subprocess.run([command, "--config", str(REPO / "setup.cfg")], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_config_loads_only_the_model_and_errors() -> None:
    """Every command and every worker imports the config first."""
    code = ("import sys, cwl_crunch.config\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('cwl_crunch'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    assert {name.split(".")[1] for name in loaded if "." in name} <= {
        "config", "errors", "model"}, loaded
