"""Nothing outside ``cwl_crunch/core/`` reaches into a core's records, store, engine
or dispatchers: it calls the core's (or a client's) methods."""

from __future__ import annotations

import ast
from pathlib import Path

import cwl_crunch

PACKAGE = Path(cwl_crunch.__file__).parent
INSIDE = {"database", "store", "engine", "images", "dispatcher"}
"""The core's own parts."""
HOLDERS = {"core", "client", "cluster_core", "embedded"}
"""Names that hold a core or an embedded client wherever they are used."""


def _holder(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name) and node.id in HOLDERS:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in HOLDERS | {"_core"}:
        return node.attr
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "core_of":
        return "core_of(...)"
    return None


def reaches_inside(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in INSIDE:
            holder = _holder(node.value)
            if holder is not None:
                found.append((node.lineno, f"{holder}.{node.attr}"))
    return found


def test_the_check_finds_what_it_looks_for() -> None:
    assert reaches_inside("core_of(request).store.put_block(b'')") == [
        (1, "core_of(...).store")]
    assert reaches_inside("with self._core.database.reading(): pass") == [
        (1, "_core.database")]
    assert reaches_inside("config.store / 'blocks'; core.put_block(b'')") == []


def test_nothing_outside_core_reaches_into_the_core() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] in ("core", "containers"):
            continue  # the core itself; containers' ``client`` is Docker's
        for line, what in reaches_inside(path.read_text()):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert offenders == []
