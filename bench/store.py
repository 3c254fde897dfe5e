"""Graph-store write throughput: GraphStore.write_rows vs one raw UNWIND statement.

Same rows (20k nodes, a few properties, MERGE'd on a composite (runId, key) uniqueness
constraint), same embedded ArcadeDB server, same run; each repetition writes into fresh
labels so neither side pays for the other's data. After unmeasured warm-up rounds (the
JVM server JITs for a while), reports median rows/s of each and the
ratio write_rows / raw (target >= 0.8). Writes bench/results/store.json.

    python bench/store.py [--rows 20000] [--reps 6] [--warmup 6] [--batch-size 1000] [--uri ENV]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from i2x_plugin.store import EmbeddedServer, GraphStore

MERGE = ("MERGE (n:{L} {{runId: row.runId, key: row.key}}) "
         "SET n.name = row.name, n.layer = row.layer, n.score = row.score, n.rank = row.rank")


def make_rows(n: int) -> list[dict[str, object]]:
    return [{"runId": "bench", "key": f"node-{i}", "name": f"concept {i}",
             "layer": f"layer{i % 7}", "score": i / n, "rank": i} for i in range(n)]


def fresh_label(store: GraphStore) -> str:
    label = f"Bench{uuid.uuid4().hex[:10]}"
    store.ensure_constraints([f"CREATE CONSTRAINT {label.lower()}_key IF NOT EXISTS "
                              f"FOR (n:{label}) REQUIRE (n.runId, n.key) IS UNIQUE"])
    return label


def drop_label(store: GraphStore, label: str) -> None:
    store.run_write(f"MATCH (n:{label}) DETACH DELETE n")
    store.run_write(f"DROP CONSTRAINT {label.lower()}_key IF EXISTS")


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=6, help="unmeasured rounds of each first")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--uri", default="embedded", help="'embedded' or 'env' (NEO4J_* vars)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "store.json")
    args = ap.parse_args()
    rows = make_rows(args.rows)

    with tempfile.TemporaryDirectory(prefix="i2x-bench-store-") as tmp:
        server = None
        if args.uri == "embedded":
            server = EmbeddedServer(Path(tmp) / "db").start()
            store = GraphStore.embedded(server.data_dir)
        else:
            store = GraphStore.from_env()
        statement = "UNWIND $rows AS row " + MERGE

        def raw(label: str) -> None:
            store.driver.execute_query(statement.format(L=label), {"rows": rows},
                                       database_=store.database)

        def lib(label: str) -> None:
            store.write_rows(MERGE.format(L=label), rows, batch_size=args.batch_size)

        def one_round(fn) -> float:  # type: ignore[no-untyped-def]
            label = fresh_label(store)
            seconds = timed(lambda: fn(label))
            assert store.read(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"] == args.rows
            drop_label(store, label)
            return seconds

        raw_s: list[float] = []
        lib_s: list[float] = []
        try:
            for _ in range(args.warmup):  # JIT and caches of the JVM server: not measured
                one_round(raw), one_round(lib)
            for rep in range(args.reps):  # interleaved, alternating who goes first
                pair = (raw, lib) if rep % 2 == 0 else (lib, raw)
                for fn in pair:
                    (raw_s if fn is raw else lib_s).append(one_round(fn))
            agent = store.agent
        finally:
            store.close()
            if server is not None:
                startup = server.startup_s
                server.stop()

    raw_rps = args.rows / statistics.median(raw_s)
    lib_rps = args.rows / statistics.median(lib_s)
    result = {
        "benchmark": "GraphStore.write_rows vs one raw UNWIND statement (MERGE on composite key)",
        "server": agent,
        "target": args.uri,
        "rows": args.rows,
        "batch_size": args.batch_size,
        "reps": args.reps,
        "warmup_rounds": args.warmup,
        "raw_unwind_seconds": [round(x, 3) for x in raw_s],
        "write_rows_seconds": [round(x, 3) for x in lib_s],
        "raw_unwind_rows_per_s": round(raw_rps),
        "write_rows_rows_per_s": round(lib_rps),
        "ratio_write_rows_over_raw": round(lib_rps / raw_rps, 3),
        "ratio_target": 0.8,
        "embedded_startup_s": startup if args.uri == "embedded" else None,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
