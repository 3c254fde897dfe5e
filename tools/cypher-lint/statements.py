"""Every Cypher statement i2x-plugin can send, collected from the code, as JSON for ``lint.mjs``.

Sources (nothing is copied by hand):

* the question catalog (``graph_schema/queries/*.cypher``), each with its declared parameters
  (plus ``$runId``, which every question receives);
* the schema DDL (``graph_schema/schema.cypher``) and the MERGE statement of every node label and
  relationship type of the schema (``graph_schema.ddl``);
* every module-level ``*_CYPHER`` constant of the package (ingestion, deletes, guards, the store's
  ping), with ``{label}`` / ``{source}`` / ``{target}`` templates filled in for every schema label
  or relationship type they can be formatted with;
* the literal statements of ``examples/``.

A statement sent inline (a literal passed straight to ``read``/``run_write``/``run``/...) would
escape this list, so the package's code is scanned for them and each one is an error: make it a
``*_CYPHER`` constant. The declared schema (labels, relationship types, property keys) comes from
``graph_schema/models.py``.

    python tools/cypher-lint/statements.py > statements.json
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("i2x_plugin", "adapters", "graph_schema")
SENDING_METHODS = {"read", "run_write", "write_rows", "query", "run", "execute_query"}
WRAPPING_PREFIXES = ("EXPLAIN ",)  # prefixed to a caller's own statement: nothing of ours to lint
_EXAMPLE_VALUES = {"int": 0, "float": 0.0, "str": "", "bool": False}


def _statement(source: str, cypher: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """``parameters`` None: the values come from Python call sites, so undeclared-parameter errors are not ours."""
    return {"source": source, "cypher": cypher, "parameters": parameters}


def catalog_statements() -> Iterator[dict[str, Any]]:
    from i2x_plugin.graph_schema.catalog import load_catalog

    for q in load_catalog().values():
        params = {"runId": ""} | {p.name: _EXAMPLE_VALUES.get(p.type, "") for p in q.params}
        yield _statement(f"catalog:{q.name}", q.cypher, params)


def schema_statements() -> Iterator[dict[str, Any]]:
    from i2x_plugin.graph_schema import ddl
    from i2x_plugin.graph_schema.models import NODE_MODELS, RELATIONSHIP_MODELS

    for i, statement in enumerate(ddl.schema_statements()):
        yield _statement(f"ddl:schema.cypher[{i}]", statement)
    for label in NODE_MODELS:
        yield _statement(f"ddl:merge_node_cypher({label})", ddl.merge_node_cypher(label))
    for rel_type in RELATIONSHIP_MODELS:
        yield _statement(f"ddl:merge_relationship_cypher({rel_type})", ddl.merge_relationship_cypher(rel_type))


def _expand(template: str) -> list[tuple[str, str]]:
    """``(filled-in values, statement)`` for every way the schema fills a ``{label}`` or ``{source}``/``{target}``
    template (a constant without those fields is a plain statement, its braces Cypher's own)."""
    from i2x_plugin.graph_schema.models import NODE_MODELS, RELATIONSHIP_MODELS

    fields = set(re.findall(r"(?<!\{)\{(label|source|target)\}", template))
    if not fields:
        return [("", template)]
    if fields == {"label"}:
        return [(label, template.format(label=label)) for label in NODE_MODELS]
    if fields == {"source", "target"}:
        pairs = sorted({(m.source.label, m.target.label) for m in RELATIONSHIP_MODELS.values()})
        return [(f"{s}->{t}", template.format(source=s, target=t)) for s, t in pairs]
    raise ValueError(f"Template fields {sorted(fields)} do not fit together: use {{label}}, or {{source}} with "
                     "{target}.")


def module_statements() -> Iterator[dict[str, Any]]:
    import i2x_plugin

    for info in pkgutil.walk_packages(i2x_plugin.__path__, "i2x_plugin."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.endswith("_CYPHER") and isinstance(value, str) and getattr(module, "__name__", "") == info.name:
                for filled, statement in _expand(value):
                    yield _statement(f"{info.name}.{name}" + (f"[{filled}]" if filled else ""), statement)


def _literal(node: ast.expr) -> bool:
    """A statement written in place: a string, an f-string, a concatenation or a ``"...".format(...)``."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        if isinstance(node.left, ast.Constant) and node.left.value in WRAPPING_PREFIXES:
            return False
        return _literal(node.left) or _literal(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _literal(node.func.value)
    return False


def sent_literals(path: Path) -> Iterator[tuple[int, ast.expr]]:
    """``(line, first argument)`` of every call that sends a literal statement in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SENDING_METHODS
                and node.args and _literal(node.args[0])):
            yield node.lineno, node.args[0]


def inline_statements(root: Path = ROOT) -> list[str]:
    """``file:line`` of every statement the package sends without a ``*_CYPHER`` name (an error)."""
    return [f"{path.relative_to(root)}:{line}" for folder in PACKAGE_DIRS
            for path in sorted((root / folder).rglob("*.py")) for line, _ in sent_literals(path)]


def example_statements(root: Path = ROOT) -> Iterator[dict[str, Any]]:
    for path in sorted((root / "examples").glob("*.py")):
        for line, arg in sent_literals(path):
            if isinstance(arg, ast.Constant):
                yield _statement(f"{path.relative_to(root)}:{line}", arg.value)


def declared_schema() -> dict[str, list[str]]:
    """Labels, relationship types and property keys of the graph, from its pydantic models."""
    from i2x_plugin.graph_schema.models import NODE_MODELS, RELATIONSHIP_MODELS

    models = [*NODE_MODELS.values(), *RELATIONSHIP_MODELS.values()]
    keys = {info.alias or name for model in models for name, info in model.model_fields.items()}
    return {"labels": sorted(NODE_MODELS), "relationshipTypes": sorted(RELATIONSHIP_MODELS),
            "propertyKeys": sorted(keys)}


def collect(root: Path = ROOT) -> dict[str, Any]:
    """The schema and every statement; raises if the package sends a statement this cannot see."""
    inline = inline_statements(root)
    if inline:
        raise SystemExit("Cypher sent inline (make each a module-level *_CYPHER constant so it is linted): "
                         + ", ".join(inline))
    statements = [*catalog_statements(), *schema_statements(), *module_statements(), *example_statements(root)]
    return {"schema": declared_schema(), "statements": statements}


if __name__ == "__main__":
    json.dump(collect(), sys.stdout, indent=1)
    sys.stdout.write("\n")
