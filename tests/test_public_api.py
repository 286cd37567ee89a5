"""The public surface: sorted, importable ``__all__`` lists and the drawn exception tree."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch import errors

PACKAGE_ROOT = Path(cwl_crunch.__file__).parent


def package_names() -> list[str]:
    names = []
    for init in sorted(PACKAGE_ROOT.rglob("__init__.py")):
        parts = init.parent.relative_to(PACKAGE_ROOT.parent).parts
        names.append(".".join(parts))
    return names


PACKAGES = package_names()

# cwl_crunch.client lists FINAL_STATES first: ruff's RUF022 ("isort-style": constants, then
# classes, then functions) wants that order, and plain sorted() puts it after "ClusterClient".


def package_params():
    return list(PACKAGES)


def test_packages_are_found():
    assert "cwl_crunch" in PACKAGES
    assert "cwl_crunch.client" in PACKAGES


@pytest.mark.parametrize("package", package_params())
def test_all_is_sorted_and_unique(package):
    module = importlib.import_module(package)
    if "__all__" not in vars(module):
        pytest.skip(f"{package} defines no __all__")
    names = list(module.__all__)
    assert all(isinstance(name, str) for name in names)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"{package}.__all__ repeats {duplicates}"
    assert names == sorted(names), f"{package}.__all__ is not sorted"


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_are_importable(package):
    """Checked apart from the order, so that an order problem cannot hide a missing name."""
    module = importlib.import_module(package)
    if "__all__" not in vars(module):
        pytest.skip(f"{package} defines no __all__")
    for name in module.__all__:
        namespace: dict[str, object] = {}
        exec(f"from {package} import {name}", namespace)
        assert name in namespace, f"{package} does not provide {name}"


def test_top_level_sdk_names():
    assert {"connect", "wait_all", "Future"} <= set(cwl_crunch.__all__)
    assert callable(cwl_crunch.connect)
    assert callable(cwl_crunch.wait_all)
    assert inspect.isclass(cwl_crunch.Future)


# The exception tree -----------------------------------------------------------------------

_NODE = re.compile(r"^(?P<prefix>(?:│   |    )*)(?P<branch>├── |└── )?(?P<name>[A-Za-z_]\w*)")


def drawn_tree() -> list[tuple[str, str | None, int, str | None]]:
    """(name, parent name, depth, branch) for each node drawn in errors.__doc__."""
    lines = errors.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    block = []
    for line in lines[start:]:
        if not line.strip():
            if block:
                break
            continue
        if not line.startswith(" "):
            break
        block.append(line)
    indent = min(len(line) - len(line.lstrip()) for line in block)
    nodes: list[tuple[str, str | None, int, str | None]] = []
    stack: list[str] = []
    for line in block:
        match = _NODE.match(line[indent:])
        assert match, f"cannot parse tree line {line!r}"
        depth = 0 if match["branch"] is None else len(match["prefix"]) // 4 + 1
        assert depth <= len(stack), f"tree line skips a level: {line!r}"
        del stack[depth:]
        nodes.append((match["name"], stack[-1] if stack else None, depth, match["branch"]))
        stack.append(match["name"])
    return nodes


def defined_exceptions() -> dict[str, type[BaseException]]:
    return {
        name: cls for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }


def test_tree_parser_reads_the_drawing():
    nodes = drawn_tree()
    assert nodes[0][:3] == ("CrunchError", None, 0)
    assert sum(1 for node in nodes if node[2] == 0) == 1  # one root


def test_tree_names_exactly_the_defined_exceptions():
    drawn = [name for name, _, _, _ in drawn_tree()]
    assert len(drawn) == len(set(drawn)), "a class is drawn twice"
    assert set(drawn) == set(defined_exceptions())


def test_each_class_has_the_drawn_parent():
    classes = defined_exceptions()
    for name, parent, _, _ in drawn_tree():
        cls = classes[name]
        if parent is None:
            assert cls.__bases__ == (Exception,), name
        else:
            assert cls.__bases__ == (classes[parent],), f"{name} should derive from {parent}"


def test_tree_branches_are_drawn_consistently():
    nodes = drawn_tree()
    for index, (name, parent, depth, branch) in enumerate(nodes):
        if parent is None:
            continue
        later_siblings = [n for n in nodes[index + 1:] if n[1] == parent and n[2] == depth]
        expected = "├── " if later_siblings else "└── "
        assert branch == expected, f"{name}: drawn with {branch!r}, expected {expected!r}"


def test_every_error_is_a_crunch_error():
    for name, cls in defined_exceptions().items():
        assert issubclass(cls, errors.CrunchError), name
