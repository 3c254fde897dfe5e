"""Reliance on the default run (issue 21): the top-5 reliance prototypes against matched random sets and static
saliency, per class, on the held-out half; the formation steps; the cost as a ratio to the sweep.

The run is ``i2x run``'s job with its defaults (mnist-5k, SmallCNN, 8 epochs, K = 32; no graph store, no
report), which explains, runs the stability test, the deletion tests of the claims and then the reliance check
(app/run.py). Its seconds come from the run's own ``stage_seconds``, so the cost ratio ``reliance / sweep`` is
measured in the same process at the same time. The drivers' deletion tests of the same run stand beside it.

The pair relations (checks/pair_reliance.py) of the same run: margin reliance's pass rate among the pair groups
it reports (a claimed edge), the confusers' top sets of the most confused pairs; and the null: SmallCNNs trained
on shuffled digit labels (5 seeds, the shuffled-label test's setting), where claims of the label kind should
stay at the null rate (``shuffled_null``).

Run: ``.venv/bin/python bench/reliance.py`` → ``bench/results/reliance.json`` (``--null-only``: only the null,
merged into the file).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from i2x_plugin.app.run import RunConfig, run_main

RESULTS = Path(__file__).parent / "results" / "reliance.json"


def passes(result) -> bool:
    """The deletion tests' criterion: the set beats 95 % of its matched random sets."""
    return result.percentile >= 0.95


def pair_summary(r) -> dict:
    """Margin reliance and confusers of one run: counts, top-set pass rates, formation steps."""
    out = {}
    for kind in ("margin", "confuser"):
        tested = [x for x in r.pair_edges if x.kind == kind]
        claimed = r.significant_pairs(kind)
        sets = [s for s in r.pair_sets if s.kind == kind]
        out[kind] = {
            "edges_tested": len(tested), "q_pass": sum(x.q <= r.fdr_q for x in tested), "claimed": len(claimed),
            "max_excess_q_pass": round(max([x.effect - x.random_effect for x in tested if x.q <= r.fdr_q],
                                           default=0.0), 5),
            "groups": len(sets), "groups_passing": sum(s.passes for s in sets),
            "formed_at_counts": {str(k): v for k, v in sorted(Counter(
                -1 if x.formed_at is None else x.formed_at for x in claimed).items())},
            "per_group": [{"a": s.a, "b": s.b, "favours": s.favours, "prototypes": s.test.prototypes,
                           "samples": s.test.samples, "effect": round(s.test.effect, 4),
                           "random_median": round(s.test.random_median, 4), "percentile": s.test.percentile,
                           "passes": s.passes, "turned_back": s.turned_back} for s in sets]}
    out["min_effect"] = r.pair_min_effect
    out["checkpoint0_false_rate"] = r.pair_checkpoint0_false_rate
    out["skipped"] = [line for line in r.skipped if "↔" in line]
    return out


def shuffled_null(seeds=range(5)) -> dict:
    """Pair relations of SmallCNNs trained 3 epochs on 1,200 digits with shuffled labels, probed on the 597 others
    with their true labels (the shuffled-label test of tests/checks/test_reliance.py), per seed."""
    import torch

    from i2x_plugin import I2X, I2XConfig
    from i2x_plugin.checks import run_reliance
    from i2x_plugin.training.data import ImageDataset, load_digits_8x8
    from i2x_plugin.training.loop import seeded, train_with_checkpoints
    from i2x_plugin.training.models import SmallCNN

    data = load_digits_8x8()
    train, probe = data.subset(range(1200), "digits-train"), data.subset(range(1200, 1797), "digits-probe")
    per_seed = {}
    for seed in seeds:
        labels = torch.as_tensor(np.random.default_rng(seed).permutation(train.labels.numpy()))
        shuffled = ImageDataset("digits-shuffled", train.images, labels, train.class_names)
        with seeded(seed), tempfile.TemporaryDirectory() as ckpts:
            model = SmallCNN(1, 10, pools=1)
            train_with_checkpoints(model, shuffled, ckpts, epochs=3, lr=3e-3, seed=seed)
            config = I2XConfig(k=12, seed=seed, null_draws=0, faithfulness=False, reliance_formation=False)
            explanation = I2X(model, "block3", config=config).explain(ckpts, probe)
            r = run_reliance(explanation, model, probe).reliance
        summary = pair_summary(r)
        summary["reliance_claimed"] = len(r.significant)
        per_seed[str(seed)] = summary
        print(seed, json.dumps(summary), flush=True)
    return {"setting": "SmallCNN, 3 epochs on 1,200 digits with shuffled labels, probe 597 digits, K = 12",
            "per_seed": per_seed}


def main() -> None:
    if "--null-only" in sys.argv:
        result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        result["pairs_shuffled_null"] = shuffled_null()
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        return
    with tempfile.TemporaryDirectory() as out:
        run = run_main(RunConfig(out=Path(out), store="none", report=False), progress=False, verbose=True)
        from i2x_plugin import StructuredExplanation

        e = StructuredExplanation.load(run.explanation_dir)
    r = e.reliance
    per_class = [{"class": s.a, "prototypes": s.prototypes, "samples": s.samples, "area": round(s.area, 4),
                  "effect": round(s.effect, 4), "random_median": round(s.random_median, 4),
                  "random_area": round(s.random_area, 4), "percentile": s.percentile, "p": round(s.p, 4),
                  "passes": passes(s), "static_prototypes": s.static_prototypes,
                  "static_effect": None if s.static_effect is None else round(s.static_effect, 4),
                  "static_passes": s.static_percentile is not None and s.static_percentile >= 0.95}
                 for s in r.top_sets]
    drivers = [x for x in e.faithfulness_results if x.kind == "drivers"]
    claimed = r.significant
    mean_top = float(np.mean([s.effect for s in r.top_sets]))
    mean_static = float(np.mean([s.static_effect for s in r.top_sets if s.static_effect is not None]))
    seconds = run.stage_seconds
    result = {
        "run": {"dataset": "mnist-5k", "k": e.k, "checkpoints": len(e.checkpoints), "probe_samples": len(e.labels),
                "measure": r.measure, "deletion": r.deletion, "held_out_fraction": r.held_out_fraction,
                "min_effect": r.min_effect, "fdr_q": r.fdr_q},
        "top5_vs_random": {
            "classes_passing": sum(c["passes"] for c in per_class), "classes": len(per_class),
            "mean_drop": round(mean_top, 4), "static_mean_drop": round(mean_static, 4),
            "ratio_to_static": round(mean_top / mean_static, 3),
            "static_classes_passing": sum(c["static_passes"] for c in per_class), "per_class": per_class},
        "claim_drivers_same_run": {"classes_passing": sum(passes(x) for x in drivers), "classes": len(drivers),
                                   "mean_drop": round(float(np.mean([x.effect for x in drivers])), 4) if drivers
                                   else None},
        "edges": {"tested": len(r.edges), "claimed": len(claimed),
                  "claimed_per_class": dict(sorted(Counter(x.cls for x in claimed).items())),
                  "formed_at": {f"{x.cls}:P{x.prototype}": x.formed_at for x in sorted(claimed, key=lambda x: (x.cls, x.rank))},
                  "formed_at_counts": {str(k): v for k, v in sorted(Counter(
                      -1 if x.formed_at is None else x.formed_at for x in claimed).items())},
                  "formation_alpha": r.formation_alpha, "checkpoint0_false_rate": r.checkpoint0_false_rate,
                  "skipped": r.skipped},
        "cost": {"reliance_seconds": round(seconds.get("reliance", float("nan")), 2),
                 "sweep_seconds": round(seconds.get("explain.sweep", float("nan")), 2),
                 "ratio_to_sweep": round(seconds.get("reliance", float("nan")) / seconds.get("explain.sweep", float("nan")), 3),
                 "pair_reliance_seconds": round(seconds.get("pair reliance", float("nan")), 2),
                 "pair_ratio_to_sweep": round(seconds.get("pair reliance", float("nan")) / seconds.get("explain.sweep", float("nan")), 3),
                 "note": "reliance and pair reliance each include their formation steps (every checkpoint re-deleted); "
                         "same process, same time"},
    }
    result["pairs"] = pair_summary(r)
    result["pairs_shuffled_null"] = shuffled_null()
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "top5_vs_random"}, indent=1))
    print(json.dumps({k: v for k, v in result["top5_vs_random"].items() if k != "per_class"}, indent=1))


if __name__ == "__main__":
    main()
