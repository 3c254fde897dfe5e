"""Is my classifier cheating? Plant a shortcut, train, let I2X find it, and try one guided fine-tuning round.

    python examples/find_a_shortcut.py [OUT_DIR]

1. A 4×4 white square is stamped into the top-left corner of 90 % of the 3s of 5,000 real MNIST digits
   (``i2x_plugin.training.shortcut``); no other class gets it. A SmallCNN learns it: 8s that carry the square
   are taken for 3s.
2. ``i2x run`` explains the model at ``block2``, the last layer before the marker's evidence is mixed into
   neighbouring cells (bench/results/shortcut.md: deleting its cells at ``block3`` leaves most of the
   confusions, at ``block2`` none).
3. The report's shortcut flag (``checks.shortcut.possible_shortcuts``) names the prototypes that sit on one fixed
   cell in most 3s and that the final model relies on for 3; their evidence and exemplar grid are printed / saved.
4. One guided fine-tuning round (``i2x_plugin.improve.finetune``): one epoch without the 3s that hold a flagged
   prototype on its cell, then one full epoch, against random removal of as many 3s, and two full epochs,
   scored by 8→3 confusions on the held-out 8s with the marker.

About 3 to 5 minutes on two CPU cores (most of it the I2X sweep). The stability re-fits are skipped to save time.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from i2x_plugin.app.run import RunConfig, load_run_data, run_main
from i2x_plugin.checks.shortcut import possible_shortcuts
from i2x_plugin.improve.finetune import FineTuneConfig, fine_tune
from i2x_plugin.method.config import I2XConfig
from i2x_plugin.report.shortcut import flag_strip
from i2x_plugin.runs.saved_run import load_saved_run
from i2x_plugin.training.shortcut import ShortcutConfig, held_out_versions

A, B = 3, 8
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="i2x-shortcut-"))

# 1–2. Plant, train, explain (no graph store, no report: only the explanation and its checks).
config = RunConfig(shortcut=ShortcutConfig(a=A, b=B, rate=0.9), layer="block2", store="none", report=False,
                   stability=False, out=out, run_id="shortcut", i2x=I2XConfig(faithfulness=False))
result = run_main(config, progress=False, verbose=True)
cut = result.metrics["shortcut"]
print(f"\nThe model learnt the shortcut: {100 * cut['b_only']['b_as_a']:.0f} % of the held-out {B}s with the marker "
      f"are taken for {A}s, {100 * cut['clean']['b_as_a']:.0f} % without it "
      f"(clean accuracy {100 * cut['clean']['accuracy']:.1f} %).")

# 3. The flag, with its evidence and exemplars.
run = load_saved_run(result.directory)
explanation = run.explanation
flags = possible_shortcuts(explanation)
if not flags:
    print("\nNo prototype was flagged as a possible shortcut.")
for f in flags:
    print(f"\nPossible shortcut: P{f.prototype} for class {f.cls}, at cell (row {f.cell[0]}, col {f.cell[1]}) of "
          f"the {explanation.map_size[0]}×{explanation.map_size[1]} map, in {100 * f.class_share:.0f} % of the "
          f"{f.cls}s and at most {100 * f.other_share:.0f} % of any other class; deleting it lowers the final model's "
          f"confidence in {f.cls} by {f.reliance_effect:.3f} (held out, q = {f.reliance_q:.1e}).")
    print(f"  exemplars (sample ids): {', '.join(map(str, f.exemplars))}")
    grid = out / f"shortcut_P{f.prototype}.png"
    grid.write_bytes(flag_strip(explanation, run.probe, f))
    print(f"  exemplar grid: {grid}")

# 4. One guided fine-tuning round against random removal of as many samples of the class.
if flags:
    data = load_run_data(config)
    flat = run.explanation.assignments.reshape(len(explanation.labels), -1)
    h, w = explanation.map_size
    holds = np.zeros(len(explanation.labels), dtype=bool)
    for f in flags:
        holds |= (explanation.labels == f.cls) & (flat[:, f.cell[0] * w + f.cell[1]] == f.prototype)
    guided = np.ones(len(data.train), dtype=bool)
    guided[np.searchsorted(data.train_index, data.probe_index[holds])] = False  # the probe is the training split
    of_a = np.flatnonzero(data.train.labels.numpy() == A)

    def random_keep(seed: int) -> np.ndarray:
        keep = np.ones(len(data.train), dtype=bool)
        keep[np.random.default_rng(seed).choice(of_a, int((~guided).sum()), replace=False)] = False
        return keep

    b_only = held_out_versions(data.test, config.shortcut)["b_only"].data
    runs = fine_tune(run.model, Path(explanation.checkpoints[-1].path), data.train,
                     b_only, (A, B), {"guided->full": ("guided", "full"), "random->full": ("random", "full"),
                                      "full->full": ("full", "full")},
                     {"guided": lambda seed: guided, "random": random_keep}, FineTuneConfig(), seeds=[0, 1])
    print(f"\nOne fine-tuning round from the final checkpoint ({(~guided).sum()} of {len(of_a)} {A}s removed for the "
          f"first epoch), scored on the held-out {B}s with the marker (2 seeds):")
    print(f"  {'schedule':<14}{f'{B}→{A} confusions':>18}{'accuracy':>10}")
    for name in ("guided->full", "random->full", "full->full"):
        mine = [r for r in runs if r.schedule == name]
        print(f"  {name:<14}{np.mean([r.b_to_a for r in mine]):>18.1f}{100 * np.mean([r.accuracy for r in mine]):>9.1f}%")
    print(f"  before        {int(round(cut['b_only']['b_as_a'] * cut['b_only']['b_images'])):>18d}"
          f"{100 * cut['b_only']['accuracy']:>9.1f}%")
print(f"\nEverything is under {result.directory}")
