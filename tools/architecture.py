"""The package's stages and their imports, read from the source (stdlib ``ast``), and the picture of them.

``python tools/architecture.py`` prints the stage graph (importing stage -> imported stage, with how many module
imports make each edge); ``docs/make_docs.py architecture`` draws it as docs/architecture.png, and
tests/test_architecture.py checks the same graph for circles and upward imports.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

# Stage -> rank: a module may import its own stage and stages of a lower rank only. Stages of one rank are
# siblings and import nothing of each other. "" is the package facade (i2x_plugin/__init__.py).
RANKS: dict[str, int] = {
    "atomic": 0, "_moved": 0,
    "adapters": 1, "store": 1,
    "training": 2,
    "method": 3,
    "checks": 4,
    "explain": 5, "graph": 5, "report": 5, "runs": 5,
    "improve": 6,
    "app": 7,
    "cli": 8, "": 8,
}
# Where each part of the i2x_plugin namespace lives in the repository (pyproject's package-dir).
SOURCES = {"i2x_plugin": "i2x_plugin", "i2x_plugin.adapters": "adapters", "i2x_plugin.graph_schema": "graph_schema"}
# What passes up an import edge, for the picture: (importing stage, imported stage) -> label.
DATA = {
    ("method", "training"): "checkpoints, ImageDataset",
    ("checks", "method"): "StructuredExplanation",
    ("explain", "checks"): "FaithfulnessResult",
    ("explain", "method"): "Explainer",
    ("graph", "method"): "StructuredExplanation",
    ("report", "method"): "StructuredExplanation",
    ("runs", "method"): "StructuredExplanation",
    ("improve", "runs"): "SavedRun",
    ("app", "explain"): "I2X",
    ("app", "checks"): "run_stability",
    ("app", "graph"): "rows written, answers",
    ("app", "report"): "report sections",
    ("app", "improve"): "ImproveResult",
}


def stage_of(module: str) -> str:
    """The stage a module of the i2x_plugin namespace belongs to (graph_schema is the graph stage's schema)."""
    parts = module.split(".")[1:2]
    stage = parts[0] if parts else ""
    return "graph" if stage == "graph_schema" else stage


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root / folder).with_suffix("").parts
            name = ".".join((package, *rel))
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports, from every import statement (functions, TYPE_CHECKING too)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # "from pkg import mod" imports the submodule; "from mod import name", the module.
                subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
                targets = subs + ([target] if len(subs) < len(node.names) else [])
            else:
                continue
            for target in targets:
                while target and target not in modules:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def stage_graph(graph: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    """(importing stage, imported stage) -> how many module imports make that edge."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for module, deps in graph.items():
        for dep in deps:
            if stage_of(module) != stage_of(dep):
                edges[stage_of(module), stage_of(dep)] += 1
    return dict(edges)


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    graph = import_graph(root)
    for (src, dst), count in sorted(stage_graph(graph).items(), key=lambda kv: (-RANKS[kv[0][0]], kv[0])):
        print(f"{src or 'i2x_plugin'} -> {dst or 'i2x_plugin'} ({count})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
