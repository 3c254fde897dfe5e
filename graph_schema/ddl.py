"""The schema statements (``schema.cypher``) and the MERGE statements every write uses.

Statements are built from the models' labels, types and identity properties only — never from
values, which always travel as parameters (``$rows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from .models import GraphRelationship, node_model, relationship_model


@cache
def schema_statements() -> tuple[str, ...]:
    """The DDL of ``schema.cypher``: constraints and indexes, each ``IF NOT EXISTS``."""
    text = (files(__package__) / "schema.cypher").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return tuple(" ".join(s.split()) for s in body.split(";") if s.strip())


def identity_properties(model: type[GraphRelationship]) -> list[str]:
    """The graph (camelCase) names of a relationship type's identity properties."""
    return [model.model_fields[f].alias or f for f in model.identity]


@cache
def merge_node_cypher(label: str) -> str:
    """Upsert rows ``{runId, key, props}`` as nodes of ``label``."""
    node_model(label)
    return (f"UNWIND $rows AS row MERGE (n:{label} {{runId: row.runId, key: row.key}}) "
            "SET n += row.props")


@cache
def merge_relationship_cypher(rel_type: str) -> str:
    """Upsert rows ``{runId, from, to, <identity>..., props}`` as relationships of ``rel_type``."""
    model = relationship_model(rel_type)
    identity = ", ".join(f"{p}: row.{p}" for p in identity_properties(model))
    pattern = f"[r:{rel_type} {{{identity}}}]" if identity else f"[r:{rel_type}]"
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{model.source.label} {{runId: row.runId, key: row.from}}) "
            f"MATCH (b:{model.target.label} {{runId: row.runId, key: row.to}}) "
            f"MERGE (a)-{pattern}->(b) SET r += row.props")


def node_params(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Node property rows in the ``{runId, key, props}`` shape of :func:`merge_node_cypher`."""
    return [{"runId": r["runId"], "key": r["key"], "props": {k: v for k, v in r.items() if k not in _NODE_ID}}
            for r in rows]


def relationship_params(rel_type: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relationship rows in the ``{runId, from, to, <identity>..., props}`` shape of
    :func:`merge_relationship_cypher`."""
    ident = tuple(identity_properties(relationship_model(rel_type)))
    top = _REL_ID + ident
    return [{**{p: r[p] for p in top}, "props": {k: v for k, v in r.items() if k not in top}} for r in rows]


_NODE_ID, _REL_ID = ("runId", "key"), ("runId", "from", "to")
