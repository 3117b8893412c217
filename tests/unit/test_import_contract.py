"""The package's import contract: layers import downwards only, no cycles, no private names across modules.

A row flows rows → requests → batches → results → tables; the layers below say which module is which
stage, from the bottom up. A module may import its own layer and the layers below it, never one
above. ``warehouse`` (a module or a package of engines) is at the bottom: every stage may use it and
it uses no stage. Every import counts, including those inside functions and under TYPE_CHECKING.
The emulator is a tool of its own beside the product: no product module may import it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python_udfs" / "claude_batch"

# Bottom first. A name is a top-level module or subpackage of claude_batch.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "logs", "statuses", "warehouse", "_crashpoints", "tmpfiles"}),
    ("facts", {"catalog", "tokens"}),
    ("prompts and prices", {"prompts", "cost"}),
    ("settings", {"config", "lifecycle", "dbt_context", "client"}),
    ("state", {"state", "runs", "locks"}),
    ("rows", {"source"}),
    ("requests", {"packing", "estimate", "budget"}),
    ("batches", {"batches", "bodies", "submissions"}),
    ("results", {"collect"}),
    ("answers now", {"realtime"}),
    ("tables", {"output", "noop"}),
    ("entry points", {"pipeline", "plugin", "calibrate", "report", "_svg", "__init__", "__main__"}),
    ("tools", {"emulator"}),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _unit(package: Path, path: Path) -> str:
    """A file's contract unit: its top-level module or subpackage name."""
    rel = path.relative_to(package)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _is_module(package: Path, parts: list[str]) -> bool:
    return package.joinpath(*parts).with_suffix(".py").exists() or package.joinpath(*parts).is_dir()


def _imports(package: Path, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported unit, imported name or None for a module, line) for every claude_batch import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = list(path.relative_to(package).parts[:-1])  # the file's package inside claude_batch
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "claude_batch" and len(parts) > 1:
                    found.append((parts[1], None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "claude_batch":
                parts = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                unit = (parts or [alias.name])[0]
                name = None if _is_module(package, parts + [alias.name]) else alias.name
                found.append((unit, name, node.lineno))
    return found


def _private_attributes(package: Path, path: Path) -> list[tuple[str, int]]:
    """``module._name`` where ``module`` is a claude_batch module this file imported."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = list(path.relative_to(package).parts[:-1])
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            modules |= {a.asname or a.name for a in node.names if _is_module(package, parts + [a.name])}
    return [(f"{n.value.id}.{n.attr}", n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules
            and n.attr.startswith("_") and not n.attr.startswith("__")]


def _files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def graph(package: Path) -> dict[str, set[str]]:
    """Unit → the units it imports (itself left out)."""
    edges: dict[str, set[str]] = {}
    for path in _files(package):
        unit = _unit(package, path)
        edges.setdefault(unit, set()).update(t for t, _, _ in _imports(package, path) if t != unit)
    return edges


def unlayered(package: Path) -> list[str]:
    return sorted({_unit(package, p) for p in _files(package)} - set(LAYER_OF))


def against_the_layers(package: Path) -> list[str]:
    wrong = []
    for path in _files(package):
        unit = _unit(package, path)
        for target, _, line in _imports(package, path):
            if LAYER_OF.get(target, -1) > LAYER_OF.get(unit, len(LAYERS)):
                wrong.append(f"{path.relative_to(package)}:{line}: {unit} ({LAYERS[LAYER_OF[unit]][0]}) imports "
                             f"{target} ({LAYERS[LAYER_OF[target]][0]})")
    return wrong


def cycles(edges: dict[str, set[str]]) -> list[str]:
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(" → ".join(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt]))
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def private_names(package: Path) -> list[str]:
    wrong = []
    for path in _files(package):
        rel = path.relative_to(package)
        for target, name, line in _imports(package, path):
            if name is not None and name.startswith("_") and not name.startswith("__"):
                wrong.append(f"{rel}:{line}: imports {name} from {target}")
        wrong += [f"{rel}:{line}: uses {used}" for used, line in _private_attributes(package, path)]
    return wrong


def test_every_module_has_a_layer():
    assert not unlayered(PACKAGE), f"declare the layer of {unlayered(PACKAGE)} in LAYERS"


def test_imports_go_down_the_layers():
    wrong = against_the_layers(PACKAGE)
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    found = cycles(graph(PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_private_name_crosses_a_module():
    wrong = private_names(PACKAGE)
    assert not wrong, "private names used across modules:\n" + "\n".join(wrong)


@pytest.fixture
def package_copy(tmp_path) -> Path:
    copy = tmp_path / "claude_batch"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    return copy


def test_a_stage_importing_a_later_stage_is_caught(package_copy):
    packing = package_copy / "packing.py"
    packing.write_text("from .pipeline import Pipeline\n" + packing.read_text())
    assert [w for w in against_the_layers(package_copy) if "packing (requests) imports pipeline" in w]


def test_a_private_name_across_modules_is_caught(package_copy):
    packing = package_copy / "packing.py"
    packing.write_text("from .collect import _helper\nfrom . import state\nstate._DDL\n" + packing.read_text())
    assert {w.split(": ", 1)[1] for w in private_names(package_copy)} >= {"imports _helper from collect",
                                                                           "uses state._DDL"}


def test_a_cycle_is_caught(package_copy):
    errors = package_copy / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom . import logs\n")
    logs = package_copy / "logs.py"
    logs.write_text(logs.read_text() + "\nfrom . import errors\n")
    assert "errors → logs → errors" in cycles(graph(package_copy))


def test_a_private_module_is_not_a_private_name():
    """Test hooks live in private modules (``_crashpoints``); importing one inside the package is fine."""
    assert not [w for w in private_names(PACKAGE) if "_crashpoints" in w]
