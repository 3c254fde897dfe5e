"""Regenerate the generated parts of the docs from the real code and a real run.

    .venv/bin/python docs/make_docs.py schema                       # docs/graph-schema.png
    .venv/bin/python docs/make_docs.py architecture                 # docs/architecture.png
    .venv/bin/python docs/make_docs.py questions RUN_DIR [STORE_DIR] # docs/questions.md

``schema`` draws every node label and relationship type of ``graph_schema.models`` (the models the
store writes), with their properties. ``questions`` asks every question of the catalog
(``graph_schema/queries/*.cypher``) on the run of RUN_DIR (an ``i2x run`` output folder whose run is
in the embedded store of STORE_DIR, default ``$I2X_STORE_DIR`` or the user data dir) with parameters
picked from that run, and writes the answers into docs/questions.md. ``architecture`` draws the stage
packages and their imports as read from the source by ``tools/architecture.py`` (the table the import test
checks).
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

DOCS = Path(__file__).resolve().parent

# Where each label sits in the picture (data coordinates).
_POSITIONS = {"Run": (0.6, 4.6), "Checkpoint": (-3.6, 4.6), "Class": (-2.4, 0.6), "Prototype": (3.8, 0.6),
              "Group": (0.6, 2.6), "Sample": (0.6, -2.9), "CurationSet": (-3.6, -2.9),
              "DeletionTest": (4.4, -2.9)}
_COLOURS = {"Run": "#FFE081", "Checkpoint": "#C990C0", "Class": "#F79767", "Prototype": "#57C7E3",
            "Group": "#8DCC93", "Sample": "#D9C8AE", "CurationSet": "#ECB5C9",
            "DeletionTest": "#A5ABB6"}
_SKIP_PROPS = {"runId", "key"}
_LABEL_AT = {("DeletionTest", "Class"): 0.3}  # where along an edge its label sits (default: the middle)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _props(model) -> list[str]:
    names = [(_camel(f.alias or n) if not f.alias else f.alias) for n, f in model.model_fields.items()]
    return [n for n in names if n not in _SKIP_PROPS and n not in ("from", "to")]


def draw_schema(path: Path) -> Path:
    """The schema as a PNG: one box per label (with its properties), one arrow per (source, target)
    listing its relationship types and their properties; self-relationships as loops."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    from i2x_plugin.graph_schema import NODE_MODELS, RELATIONSHIP_MODELS

    grass = (Path(__file__).resolve().parent.parent / "graph_schema" / "i2x.grass")
    colours = dict(_COLOURS)
    if grass.is_file():
        for label, colour in re.findall(r"node\.(\w+)\s*\{[^}]*?(?<![-\w])color:\s*(#[0-9A-Fa-f]{6})", grass.read_text()):
            colours[label] = colour
    fig = Figure(figsize=(15, 11))
    ax = fig.subplots()
    ax.set_xlim(-7.4, 6.4)
    ax.set_ylim(-4.2, 5.6)
    ax.axis("off")
    for label, model in NODE_MODELS.items():
        x, y = _POSITIONS[label]
        props = _props(model)
        lines = [", ".join(props[i : i + 3]) for i in range(0, len(props), 3)]
        ax.text(x, y, label, ha="center", va="bottom", fontsize=13, fontweight="bold", zorder=5,
                bbox=dict(boxstyle="round,pad=0.5", fc=colours.get(label, "#ddd"), ec="#444"))
        ax.text(x, y - 0.12, "\n".join(lines), ha="center", va="top", fontsize=7, color="#333", zorder=5,
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#bbb", alpha=0.92))
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel_type, model in RELATIONSHIP_MODELS.items():
        props = _props(model)
        text = rel_type + (f" {{{', '.join(props)}}}" if props else "")
        edges[(model.source.label, model.target.label)].append(
            textwrap.fill(text, 46, subsequent_indent="    ", break_on_hyphens=False))
    for (source, target), types in edges.items():
        (x0, y0), (x1, y1) = _POSITIONS[source], _POSITIONS[target]
        text = "\n".join(types)
        box = dict(boxstyle="round,pad=0.25", fc="#f7f7f7", ec="#ccc")
        if source == target:  # a loop on the node's left, its types to the left of the loop
            loop = FancyArrowPatch((x0 - 0.55, y0 + 0.3), (x0 - 0.55, y0 - 0.05), connectionstyle="arc3,rad=1.4",
                                   arrowstyle="-|>", mutation_scale=14, color="#555", lw=1.2, zorder=2)
            ax.add_patch(loop)
            ax.text(x0 - 0.95, y0 + 0.12, text, ha="right", va="center", fontsize=7, color="#222", zorder=6,
                    bbox=box)
            continue
        horizontal = abs(x1 - x0) > 2 * abs(y1 - y0)
        arrow = FancyArrowPatch((x0, y0 + 0.1), (x1, y1 + 0.1), arrowstyle="-|>", mutation_scale=16, color="#555",
                                lw=1.2, shrinkA=45 if horizontal else 22, shrinkB=62 if horizontal else 26, zorder=1)
        ax.add_patch(arrow)
        at = _LABEL_AT.get((source, target), 0.5)
        ax.text(x0 + at * (x1 - x0), y0 + at * (y1 - y0) + 0.1, text, ha="center", va="center", fontsize=7, color="#222",
                zorder=4, bbox=box)
    ax.set_title("The explanation graph: node labels (with properties) and relationship types {properties}.\n"
                 "Every node also has runId and key (unique together) and name; every relationship has runId.",
                 fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight", facecolor="white")
    return path


# --- the question catalog with example answers ------------------------------------------------------


_SHIFT = {"checks": 2.0, "training": -2.0, "improve": -1.5}  # spread the one-stage rows


def draw_architecture(path: Path) -> Path:
    """The stages as a PNG: one box per stage (its modules inside), top stage first, one arrow per stage that
    imports another (labelled with what passes up it); the foundations (atomic, adapters, store) at the bottom."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    sys.path.insert(0, str(DOCS.parent / "tools"))
    from architecture import DATA, RANKS, import_graph, stage_graph, stage_of

    graph = import_graph(DOCS.parent)
    members: dict[str, list[str]] = defaultdict(list)
    for module in graph:
        stage = stage_of(module)
        members.setdefault(stage, []) if stage != "_moved" else None
        if stage != "_moved" and module not in (f"i2x_plugin.{stage}", "i2x_plugin"):
            name = module.removeprefix(f"i2x_plugin.{stage}.").removeprefix("i2x_plugin.")
            if not name.startswith("graph_schema."):
                members[stage].append(name)
    members["graph"].append("graph_schema/")
    members[""] = ["I2X, I2XConfig, CheckpointRecorder, StructuredExplanation"]
    rows: dict[int, list[str]] = defaultdict(list)
    for stage in members:
        rows[RANKS[stage]].append(stage)
    at = {}
    for rank, stages in rows.items():
        for i, stage in enumerate(sorted(stages)):
            at[stage] = ((i - (len(stages) - 1) / 2) * 4.6 + _SHIFT.get(stage, 0.0), rank * 1.35)
    fig = Figure(figsize=(16, 15))
    ax = fig.subplots()
    ax.set_xlim(-10, 10)
    ax.set_ylim(-0.8, 11.6)
    ax.axis("off")
    for stage, (x, y) in at.items():
        names = sorted(members[stage])
        body = "\n".join(", ".join(names[i : i + 3]) for i in range(0, len(names), 3))
        title = {"": "i2x_plugin (facade)", "cli": "cli (entry point)", "explain": "explain (I2X)"}.get(stage, stage)
        ax.text(x, y, title + ("/" if len(names) > 1 else ""), ha="center", va="bottom", fontsize=12,
                fontweight="bold", zorder=5, bbox=dict(boxstyle="round,pad=0.4", fc="#FFE081" if RANKS[stage] > 1
                                                        else "#dddddd", ec="#444"))
        if body and stage:
            ax.text(x, y - 0.08, body, ha="center", va="top", fontsize=7, color="#333", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#bbb", alpha=0.95))
    for (src, dst), count in sorted(stage_graph(graph).items()):
        if dst in ("_moved", "atomic") or src == "_moved":
            continue
        (x0, y0), (x1, y1) = at[src], at[dst]
        label, helper = DATA.get((src, dst)), RANKS[dst] <= 1
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1 + 0.3), arrowstyle="-|>", mutation_scale=12,
                                     color="#555" if label else "#bbb", alpha=0.35 if helper else 1.0,
                                     lw=0.6 if helper else 0.8 + min(count, 12) / 6, shrinkA=8, shrinkB=8,
                                     connectionstyle="arc3,rad=0.06", zorder=1))
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.15, label, ha="center", va="center", fontsize=7, zorder=4,
                    color="#222", bbox=dict(boxstyle="round,pad=0.2", fc="#f7f7f7", ec="#ccc"))
    ax.set_title("The stages of i2x_plugin and their imports, drawn from the source (tools/architecture.py).\n"
                 "Arrows point from the importing stage to the imported one, always down; labelled: what passes up it; "
                 "faint: the shared helpers (adapters, store, atomic).",
                 fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight", facecolor="white")
    return path


def _params_for(name: str, explanation, answers: dict) -> dict:
    """Parameters for question ``name`` picked from the run so that the answer is not empty."""
    confused = answers.get("most_confused") or []
    a, b = (confused[0]["a"], confused[0]["b"]) if confused else tuple(explanation.learning_order[0])
    k = confused[0]["prototype"] if confused else explanation.drivers[0].prototype
    samples = sorted({s for r in confused for s in r["samples"]})
    misclassified = samples[0] if samples else None
    picks = {
        "class_drivers": {"cls": a}, "common_prototypes": {"a": a, "b": b}, "learning_groups": {"cls": a, "step": 1},
        "pair_separators": {"a": a, "b": b}, "prototype_evolution": {"k": k}, "prototype_exemplars": {"k": k},
        "prototype_samples": {"k": k}, "shared_prototypes": {"cls": a}, "uncertain_prototypes": {"a": a, "b": b},
        "sample_evidence": {"sample": misclassified}, "misclassified_evidence": {"sample": misclassified},
        "class_reliance": {"cls": a}, "pair_reliance": {"a": a, "b": b},
    }
    return {key: value for key, value in picks.get(name, {}).items() if value is not None}


def write_questions(run_dir: Path, store_dir: str | None, path: Path) -> Path:
    from i2x_plugin import StructuredExplanation
    from i2x_plugin.graph_schema.catalog import load_catalog
    from i2x_plugin.graph.questions import ask
    from i2x_plugin.store import GraphStore

    explanation = StructuredExplanation.load(run_dir / "explanation")
    run = explanation.run_id
    store = GraphStore.embedded(store_dir)
    answers: dict[str, list] = {"most_confused": ask(store, "most_confused", run_id=run).to_dicts()}
    parts = [
        "# The question catalog\n",
        f"The {len(load_catalog())} questions of the I2X method, each a parameterised Cypher file in",
        "`graph_schema/queries/` (its header declares the parameters and the columns). Ask them from the CLI,",
        "`i2x ask NAME --param k=v [--run RUN_ID] [--format table|json]` (`i2x ask --list` lists them), from Python, `ask(store, NAME, run_id=..., **params)`,",
        "or paste the Cypher into Neo4j Browser with `:param` (see [Neo4j Browser](neo4j-browser.md)). Without a run",
        "id they answer on the most recently written complete run.\n",
        f"The example answers below are real: the default `i2x run` (run `{run}`: {explanation.model_name} on "
        f"{explanation.dataset}, {len(explanation.labels)} probe samples, {len(explanation.checkpoints)} checkpoints, "
        f"K = {explanation.k}), generated by `docs/make_docs.py questions`. Long answers are cut to their first rows.\n",
    ]
    for q in sorted(load_catalog().values(), key=lambda q: q.number):
        params = _params_for(q.name, explanation, answers)
        answer = ask(store, q.name, run_id=run, **params)
        command = f"i2x ask {q.name}" + "".join(f" --param {k}={v}" for k, v in params.items()) + f" --run {run}"
        table = answer.to_table().splitlines()
        body = [line for line in table if not line.startswith(q.name + " —") and not line.startswith("run:")]
        if len(body) > 14:
            body = body[:14] + [f"… ({len(answer.rows)} rows in all)"]
        parts += [f"## {q.number}. `{q.name}`\n", f"{q.doc}\n",
                  "Parameters: " + (", ".join(f"`{p.signature()}`" for p in q.params) or "none") + "\n",
                  f"```\n$ {command}\n" + "\n".join(body) + "\n```\n"]
        if not answer.rows and answer.hint:
            parts.append(f"(Empty on this run: {answer.hint})\n")
    store.close()
    path.write_text("\n".join(parts))
    return path


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "schema":
        print(draw_schema(DOCS / "graph-schema.png"))
    elif len(sys.argv) >= 2 and sys.argv[1] == "architecture":
        print(draw_architecture(DOCS / "architecture.png"))
    elif len(sys.argv) >= 3 and sys.argv[1] == "questions":
        print(write_questions(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None, DOCS / "questions.md"))
    else:
        raise SystemExit(__doc__)
