# %% [markdown]
# # A question's answer as an interactive graph (neo4j-viz), in a notebook
#
# Open this file as a notebook (Jupyter with jupytext, VS Code, PyCharm: `# %%` cells) or run it as
# a script: `python examples/notebook_view.py [RUN_ID] [OUT.html]`. It asks the graph which prototypes
# are uncertain in the most confused class pair, draws the classes, prototypes and samples the answer
# names with neo4j-viz (colours from graph_schema/i2x.grass, edge width by |β|), and also writes the
# view as an offline HTML page. Needs a run in the graph: `i2x run` (or examples/query_graph.py) first.

# %%
import sys
import tempfile
from pathlib import Path

from i2x_plugin.graph.ingest import read_run_graph
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import GraphStore
from i2x_plugin.graph.view import answer_keys, to_visualization, view_answer

run_id = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None  # None: latest run
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="i2x-view-")) / "answer.html"
store = GraphStore.connect("embedded")  # or GraphStore.connect("env") for NEO4J_URI

# %% The answer as a table
answer = ask(store, "most_confused", run_id=run_id)
if not answer.rows:  # a small run may have no uncertain prototype: show what drives class 0 instead
    print(f"most_confused: {answer.hint}")
    answer = ask(store, "class_drivers", run_id=run_id, cls=0)
if answer.run_id is None:
    raise SystemExit(f"No run to show: {answer.hint}")
print(answer.to_table())

# %% The same answer as a graph: in a notebook, the last line renders the interactive view
graph = to_visualization(read_run_graph(store, answer.run_id, answer_keys(answer)))
print(f"{len(graph.nodes)} nodes, {len(graph.relationships)} relationships")
graph.render(height="500px")

# %% …and as an offline HTML page to share
print("offline view:", view_answer(store, answer, out))
store.close()
