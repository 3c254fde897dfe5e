"""Offline HTML views of the explanation graph (neo4j-viz): a whole run, or one question's answer.

The page neo4j-viz writes is self-contained (its JavaScript and CSS are inlined; no CDN), so it
opens without network. Colours come from ``graph_schema/i2x.grass``, the same as Neo4j Browser;
captions are each node's ``name``; relationships that carry a β (or margin, score) are drawn with a
width proportional to its magnitude — what Browser's GraSS cannot do.

The view of an answer is the subgraph of the run made of the entities the answer names (classes,
prototypes, samples, groups — recognised by column and parameter names) and the relationships
among them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2x_plugin.atomic import write_text
from i2x_plugin.graph_schema import GRASS_PATH
from i2x_plugin.graph.ingest import list_runs, read_run_graph

if TYPE_CHECKING:
    import networkx as nx
    from neo4j_viz import VisualizationGraph

    from i2x_plugin.graph.questions import Answer
    from i2x_plugin.store.graph import GraphStore

_CLASS_COLUMNS = ("cls", "a", "b", "favours", "against", "label", "predicted", "prediction")
_SIZES = {"Run": 28, "Class": 24, "Prototype": 18, "CurationSet": 20, "Checkpoint": 14, "Group": 12, "Sample": 9}
_MAGNITUDE = ("beta", "margin", "score")


@cache
def grass_colours() -> tuple[dict[str, str], dict[str, str]]:
    """``(label -> colour, relationship type -> colour)`` from ``i2x.grass``."""
    text = GRASS_PATH.read_text(encoding="utf-8")
    nodes, rels = {}, {}
    for kind, name, body in re.findall(r"(node|relationship)\.(\w+)\s*\{([^}]*)\}", text):
        colour = re.search(r"(?<![-\w])color:\s*(#[0-9A-Fa-f]{6})", body)
        if colour:
            (nodes if kind == "node" else rels)[name] = colour.group(1)
    return nodes, rels


def _json_safe(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}


def to_visualization(graph: nx.MultiDiGraph) -> VisualizationGraph:
    """A neo4j-viz graph of a networkx graph in this package's shape (``labels`` + properties per node)."""
    from neo4j_viz import Node, Relationship, VisualizationGraph

    node_colours, rel_colours = grass_colours()
    nodes, labels = [], set()
    for nid, data in graph.nodes(data=True):
        label = data["labels"][0]
        labels.add(label)
        nodes.append(Node(id=nid, caption=str(data.get("name", nid)), color=node_colours.get(label, "#A5ABB6"),
                          size=_SIZES.get(label, 10), properties=_json_safe(dict(data))))
    peak = {}
    for _, _, data in graph.edges(data=True):
        for p in _MAGNITUDE:
            if isinstance(data.get(p), (int, float)):
                peak[data["type"]] = max(peak.get(data["type"], 0.0), abs(data[p]))
    rels = []
    for source, target, key, data in graph.edges(keys=True, data=True):
        rel_type = data["type"]
        value = next((data[p] for p in _MAGNITUDE if isinstance(data.get(p), (int, float))), None)
        width = 1.0 if value is None or not peak.get(rel_type) else 0.5 + 7.5 * abs(value) / peak[rel_type]
        caption = rel_type if value is None else f"{rel_type} {value:.3g}"
        rels.append(Relationship(id=f"{source}->{target}:{key}", source=source, target=target, caption=caption,
                                 color=rel_colours.get(rel_type, "#A5ABB6"), width=width,
                                 properties=_json_safe({k: v for k, v in data.items() if k != "type"})))
    vg = VisualizationGraph(nodes=nodes, relationships=rels)
    vg.set_legend(nodes={lb: node_colours.get(lb, "#A5ABB6") for lb in sorted(labels)})
    return vg


def answer_keys(answer: Answer) -> dict[str, set[str]]:
    """The nodes (label -> keys) an answer names, by its column and parameter names."""
    keys: dict[str, set[str]] = defaultdict(set)
    if answer.run_id is not None:
        keys["Run"].add(answer.run_id)
    records = [dict(answer.params)] + answer.to_dicts()
    for rec in records:
        for col in _CLASS_COLUMNS:
            if isinstance(rec.get(col), int) and not isinstance(rec.get(col), bool):
                keys["Class"].add(str(rec[col]))
        for col in ("prototype", "k"):
            if isinstance(rec.get(col), int):
                keys["Prototype"].add(str(rec[col]))
        for col in ("topPrototypes", "orderA"):
            keys["Prototype"].update(str(v) for v in rec.get(col) or [] if v is not None)
        if isinstance(rec.get("sample"), int):
            keys["Sample"].add(f"probe:{rec['sample']}")
        keys["Sample"].update(f"probe:{v}" for v in rec.get("samples") or [])
        keys["Sample"].update(rec.get("storedSamples") or [])
        if isinstance(rec.get("group"), int) and "step" in answer.params and "cls" in answer.params:
            keys["Group"].add(f"{answer.params['step']}:{answer.params['cls']}:{rec['group']}")
    return {label: found for label, found in keys.items() if found}


def write_html(graph: VisualizationGraph, out: str | Path, title: str = "i2x") -> Path:
    """Render to a self-contained HTML file (no network needed to open it)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = graph.render(width="100%", height="95vh", theme="light", max_allowed_nodes=20_000).data
    html = html.replace("<head>", f"<head><title>{_escape(title)}</title>", 1)
    write_text(out, html)
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


BULK_TYPES = ("DRIVES",)


def view_run(store: GraphStore, run_id: str, out: str | Path, all_relationships: bool = False) -> Path:
    """Write the whole graph of one run as an offline HTML page.

    By default the β of every prototype toward every class (``DRIVES``, summarised by
    ``KEY_DRIVER_OF``) is left out; ``all_relationships`` keeps it.
    """
    graph = read_run_graph(store, run_id, skip_types=() if all_relationships else BULK_TYPES)
    if graph.number_of_nodes() == 0:
        runs = ", ".join(r.run_id for r in list_runs(store)) or "none"
        raise ValueError(f"Run {run_id!r} is not in the graph (runs: {runs}); nothing to view.")
    return write_html(to_visualization(graph), out, f"i2x run {run_id}")


def view_answer(store: GraphStore, answer: Answer, out: str | Path) -> Path:
    """Write the subgraph an answer names (see the module docstring) as an offline HTML page."""
    if answer.run_id is None or not answer.rows:
        raise ValueError(f"Nothing to view: {answer.question.name} has no rows. {answer.hint or ''}".strip())
    graph = read_run_graph(store, answer.run_id, answer_keys(answer))
    return write_html(to_visualization(graph), out, f"i2x {answer.question.name} · {answer.run_id}")
