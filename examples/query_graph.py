"""Ask the explanation graph questions from Python: named catalog questions, ad-hoc Cypher, networkx.

    python examples/query_graph.py [RUN_DIR]

With RUN_DIR (an ``i2x run`` output folder, e.g. ``i2x-out/20260101-120000-ab12``) it queries that
run; without, it first explains a small model on 8×8 digits and writes it to the graph. The graph
is the embedded ArcadeDB server (started on demand), or your Neo4j when ``NEO4J_URI`` (and
``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``) are set.

The same graph in Neo4j Browser: see docs/neo4j-browser.md (connect, load graph_schema/i2x.grass,
paste the catalog queries from graph_schema/queries/ with ``:param``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from i2x_plugin import I2X, I2XConfig, StructuredExplanation
from i2x_plugin.graph_schema import explanation_rows
from i2x_plugin.training.data import load_digits_8x8
from i2x_plugin.graph.ingest import write_explanation
from i2x_plugin.training.models import SmallCNN
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import GraphStore, ReadOnlyQueryError
from i2x_plugin.training.loop import train_with_checkpoints

if len(sys.argv) > 1:
    explanation = StructuredExplanation.load(Path(sys.argv[1]) / "explanation")
else:
    data = load_digits_8x8()
    model = SmallCNN(1, 10, pools=1)
    checkpoints = Path(tempfile.mkdtemp(prefix="i2x-example-")) / "checkpoints"
    train_with_checkpoints(model, data, checkpoints, epochs=3, lr=1e-2, seed=0)
    explanation = I2X(model, "block3", config=I2XConfig(k=12)).explain(checkpoints, data, run_id="example-digits")

store = GraphStore.connect("env" if os.environ.get("NEO4J_URI") else "embedded")
write_explanation(store, explanation)  # idempotent upsert; the Run node says status 'complete' when all is in
run = explanation.run_id
print(f"graph: {store.uri}, run {run}\n")

# 1. Named questions of the catalog (the same as `i2x ask NAME --param k=v --run RUN`).
order = ask(store, "learning_order", run_id=run).to_table().splitlines()
print("\n".join(order[:12] + (["…"] if len(order) > 12 else [])), "\n")
print(ask(store, "class_drivers", run_id=run, cls=7).to_table(), "\n")
answer = ask(store, "most_confused", run_id=run)
print(answer.to_table() if answer.rows else f"most_confused: {answer.hint}", "\n")

# 2. Your own Cypher, read-only, values always as parameters (the same as `i2x cypher "..."`).
rows = store.query(
    "MATCH (p:Prototype {runId: $run})-[u:UNCERTAIN_BETWEEN]->(c:Class) "
    "RETURN p.name AS prototype, u.a AS a, u.b AS b, u.flips AS flips ORDER BY u.score DESC LIMIT 5", run=run)
print("top uncertain prototypes:", rows or "none", "\n")
try:
    store.query("MATCH (r:Run {runId: $run}) SET r.status = 'edited'", run=run)
except ReadOnlyQueryError as err:
    print("a write through query() is refused:", str(err)[:90], "…\n")

# 3. The same graph in memory, for networkx.
graph = explanation_rows(explanation).to_networkx()
print(f"networkx: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges")
store.close()
