"""The explanation graph's schema (imported as ``i2x_plugin.graph_schema``).

* :mod:`.models` — pydantic models of every node label and relationship type;
* ``schema.cypher`` / :func:`schema_statements` — uniqueness constraints and indexes;
* :func:`explanation_rows` — a StructuredExplanation as the rows the store holds
  (:meth:`GraphRows.to_networkx` gives the same graph as networkx);
* ``queries/*.cypher`` / :mod:`.catalog` — the "why" question catalog (asked through :mod:`i2x_plugin.graph.questions`);
* ``i2x.grass`` (:data:`GRASS_PATH`) — the Neo4j Browser style.
"""

from importlib.resources import files

from .catalog import get_question, list_questions, load_catalog
from .ddl import schema_statements
from .models import NODE_MODELS, RELATIONSHIP_MODELS, GraphNode, GraphRelationship
from .rows import GraphRows, explanation_rows, node_id, sample_key

GRASS_PATH = files(__name__) / "i2x.grass"

__all__ = [
    "GRASS_PATH", "GraphNode", "GraphRelationship", "GraphRows", "NODE_MODELS", "RELATIONSHIP_MODELS",
    "explanation_rows", "get_question", "list_questions", "load_catalog", "node_id", "sample_key", "schema_statements",
]
