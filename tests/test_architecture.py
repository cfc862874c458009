"""The layer rule of issue #13, read from the modules' imports with ``ast``.

cli -> service -> study -> priors -> training -> recipes, search_spaces -> base (errors, registry,
interrupts, yaml_files). A module may import its own layer or any layer below, never one above;
the import graph has no circle (lazy imports inside functions count too); the pure-data layer
imports no torch, lightning or optuna at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tunekit"

# Highest first; a module belongs to the first prefix it matches.
LAYERS = [
    ("cli", ("tunekit.cli", "tunekit.__main__")),
    ("service", ("tunekit.service", "tunekit.report")),  # report: beside service, under cli (issue #12)
    ("study", ("tunekit.study",)),
    ("priors", ("tunekit.priors",)),
    ("training", ("tunekit.training",)),
    ("data", ("tunekit.recipes", "tunekit.search_spaces")),
    ("base", ("tunekit.errors", "tunekit.registry", "tunekit.interrupts", "tunekit.yaml_files", "tunekit")),
]
HEAVY = ("torch", "lightning", "optuna", "sqlalchemy")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module ``name`` imports (``from pkg import submodule`` counts as the submodule)."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return out


def layer(name: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return len(LAYERS) - rank
    raise AssertionError(f"{name} is in no layer; add it to LAYERS")


def internal(name: str) -> set[str]:
    return {m for m in imports(name) if m in MODULES and m != "tunekit"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_layer(name):
    upward = {m for m in internal(name) if layer(m) > layer(name)}
    assert not upward, f"{name} ({LAYERS[len(LAYERS) - layer(name)][0]}) imports higher layers: {sorted(upward)}"


def test_no_import_circles():
    graph = {name: internal(name) - {name} for name in MODULES}
    # A package's __init__ importing its own submodules is how packages re-export; not a circle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(m for m in MODULES if layer(m) == layer("tunekit.recipes")))
def test_data_layer_imports_no_torch_or_optuna(name):
    heavy = {m for m in imports(name) if m.split(".")[0] in HEAVY}
    assert not heavy, f"{name} is pure data and math, but imports {sorted(heavy)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"
