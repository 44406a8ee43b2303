"""The package's shape: no import cycle between its modules (type-only imports count too),
and no module far past the size a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "batchaction"
MAX_LINES = 420  # "about 400": a few lines over is tolerated, a second concern is not


def import_graph() -> nx.DiGraph:
    """Module -> module it imports (``from batchaction.x import``, ``from batchaction import x``),
    wherever the import is: top level, a function, or ``if TYPE_CHECKING``."""
    graph = nx.DiGraph()
    for path in PACKAGE.glob("*.py"):
        module = f"batchaction.{path.stem}"
        graph.add_node(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module == "batchaction":
                for alias in node.names:
                    if (PACKAGE / f"{alias.name}.py").exists():
                        graph.add_edge(module, f"batchaction.{alias.name}")
            elif node.module.startswith("batchaction."):
                graph.add_edge(module, node.module)
    return graph


def test_no_import_cycle() -> None:
    cycles = [cycle for cycle in nx.simple_cycles(import_graph()) if len(cycle) > 1]
    assert cycles == []


def test_no_module_is_far_past_400_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
