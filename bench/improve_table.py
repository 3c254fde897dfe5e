"""Statistics, the validation choice, the markdown table and the results JSON of the study (bench/improve.py).

The functions take the per-seed scores the runner cached (``study_report`` through the readers it is
given) and return JSON-ready dicts; none trains or scores a model. Scores of a seed are pooled over
the splits of a setting (confusions summed, accuracy, loss and margin averaged), so a secondary
setting's seed counts its confusions over all its test images.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from i2x_plugin.improve.stats import holm, mean_std, paired

PAPER = {
    "source": "Li, Yin, Landry, Ding, Mettu, arXiv 2603.10234 (2026), as given in shared/spec/method.md "
              "('from secondary notes of the paper; treat as approximate'). THEIR numbers, not ours.",
    "rows": [
        {"setting": "MNIST, ResNet-50 (paper)", "pair": "2↔7",
         "full→full": {"accuracy_pct": "98.46 ± 0.31", "confusions": "9.6 ± 2.87"},
         "curated→full": {"accuracy_pct": "98.64 ± 0.12", "confusions": "8.4 ± 1.85"}},
        {"setting": "CIFAR-10, ResNet-50 (paper)", "pair": "cat↔dog",
         "full→full": {"accuracy_pct": "81.43 ± 2.79", "confusions": "261.2 ± 30.77"},
         "curated→full": {"accuracy_pct": "84.02 ± 2.70", "confusions": "238.6 ± 21.90"}},
        {"setting": "MNIST, InceptionV3 (paper)", "pair": "4↔9",
         "full→full": {"accuracy_pct": "99.13 ± 0.29", "confusions": "12.6 ± 3.07"},
         "curated→full": {"accuracy_pct": "99.11 ± 0.27", "confusions": "10.8 ± 2.71"}},
    ],
}
METRICS = ("confusions", "a_to_b", "b_to_a", "accuracy", "pair_loss", "pair_margin")


def pooled(per_split: list[dict[int, dict[str, dict]]]) -> dict[int, dict[str, dict[str, float]]]:
    """seed → schedule → metric, over the seeds and schedules every split has (confusions summed, rest averaged)."""
    seeds = set.intersection(*(set(s) for s in per_split)) if per_split else set()
    out: dict[int, dict[str, dict[str, float]]] = {}
    for seed in sorted(seeds):
        names = set.intersection(*(set(s[seed]) for s in per_split))
        out[seed] = {}
        for name in names:
            runs = [s[seed][name] for s in per_split]
            row = {m: float(np.sum([r[m] for r in runs])) for m in ("a_to_b", "b_to_a")}
            row["confusions"] = row["a_to_b"] + row["b_to_a"]
            for m in ("accuracy", "pair_loss", "pair_margin"):
                row[m] = float(np.mean([r[m] for r in runs])) if all(r.get(m) is not None for r in runs) else None
            out[seed][name] = row
    return out


def _values(data: dict[int, dict[str, dict]], name: str, metric: str) -> list[float]:
    return [data[s][name][metric] * (100 if metric == "accuracy" else 1) for s in sorted(data)]


def arm_statistics(data: dict[int, dict[str, dict]], variants: list[str], alpha: float, max_drop_pt: float,
                   min_seeds: int) -> dict[str, Any]:
    """Per schedule mean ± std; per variant the paired tests vs R(V)→full and vs full→full, Holm over variants."""
    names = sorted(set.intersection(*(set(v) for v in data.values()))) if data else []
    table = {n: {m: mean_std(_values(data, n, m)) for m in METRICS if all(data[s][n][m] is not None for s in data)}
             for n in names}
    ran = [v for v in variants if f"{v}->full" in names and f"R({v})->full" in names]
    out: dict[str, Any] = {"seeds": sorted(data), "table": table, "variants": {}}
    for v in ran:
        guided, control = f"{v}->full", f"R({v})->full"
        row = {"vs_random": paired(_values(data, guided, "confusions"), _values(data, control, "confusions"), False,
                                   claim=True, min_seeds=min_seeds),
               "vs_full": paired(_values(data, guided, "confusions"), _values(data, "full->full", "confusions"), False,
                                 claim=True, min_seeds=min_seeds),
               "accuracy_vs_full": paired(_values(data, guided, "accuracy"), _values(data, "full->full", "accuracy"),
                                          True, claim=True, min_seeds=min_seeds)}
        for metric, better in (("a_to_b", False), ("b_to_a", False), ("pair_loss", False), ("pair_margin", True)):
            if metric in table.get(guided, {}) and metric in table.get(control, {}):
                row[f"{metric}_vs_random"] = paired(_values(data, guided, metric), _values(data, control, metric),
                                                    better, claim=True, min_seeds=min_seeds)
        out["variants"][v] = row
    for test in ("vs_random", "vs_full"):
        for p_key in ("t_test_p", "wilcoxon_p"):
            adjusted = holm([out["variants"][v][test][p_key] for v in ran])
            for v, p in zip(ran, adjusted):
                out["variants"][v][test][f"holm_{p_key}"] = p
    for v in ran:
        row = out["variants"][v]
        beats = {test: row[test]["mean_difference"] < 0 and row[test]["holm_t_test_p"] is not None
                 and row[test]["holm_t_test_p"] < alpha for test in ("vs_random", "vs_full")}
        accuracy_ok = row["accuracy_vs_full"]["mean_difference"] >= -max_drop_pt
        wilcoxon_agrees = all(row[t]["holm_wilcoxon_p"] is not None and row[t]["holm_wilcoxon_p"] < alpha
                              for t in beats if beats[t])
        row["success"] = bool(all(beats.values()) and accuracy_ok)
        row["beats_random"], row["beats_full"], row["accuracy_ok"] = beats["vs_random"], beats["vs_full"], accuracy_ok
        row["wilcoxon_agrees"] = bool(wilcoxon_agrees)
    return out


def choose_variant(data: dict[int, dict[str, dict]], guided: list[str], max_drop_pt: float,
                   removed: dict[str, int]) -> dict[str, Any]:
    """The default variant, from validation scores only (the plan's rule): accuracy within the drop first,
    then the smallest mean paired difference V→full − R(V)→full in targeted confusions, then fewest removed."""
    rows = []
    for v in guided:
        g, c = f"{v}->full", f"R({v})->full"
        if not data or any(g not in data[s] or c not in data[s] for s in data):
            continue
        diff = float(np.mean(np.subtract(_values(data, g, "confusions"), _values(data, c, "confusions"))))
        drop = float(np.mean(np.subtract(_values(data, g, "accuracy"), _values(data, "full->full", "accuracy"))))
        rows.append({"variant": v, "mean_difference_vs_random": diff, "accuracy_vs_full_pt": drop,
                     "accuracy_ok": drop >= -max_drop_pt, "removed": removed[v]})
    ranked = sorted(rows, key=lambda r: (not r["accuracy_ok"], r["mean_difference_vs_random"], r["removed"]))
    return {"chosen_variant": ranked[0]["variant"] if ranked else None, "validation": ranked,
            "rule": "on validation only: accuracy of V→full ≥ full→full − max drop first, then the smallest mean "
                    "paired difference in targeted confusions V→full − R(V)→full, then the fewest removed samples"}


def _fmt(d: dict | None, key: str = "mean", digits: int = 1) -> str:
    if not d:
        return "–"
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}" if key == "mean" else f"{d[key]:.{digits}f}"


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def markdown(report: dict[str, Any]) -> str:
    """One row per setting, arm and variant beside its random control and full→full; the paper's rows after."""
    lines = ["| setting (arm) | variant | removed a / b | V→full confusions | R(V)→full | full→full | Δ vs R (Holm t p; "
             "Wilcoxon p) | Δ vs full→full (Holm t p) | accuracy % V→full (Δ vs full→full) | Δ a-vs-b loss vs R "
             "| success |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, setting in report.get("settings", {}).items():
        for arm, stats in setting.get("arms", {}).items():
            table = stats.get("table", {})
            ff = table.get("full->full", {})
            for v, sel in setting.get("selections", {}).items():
                if arm == "sensitivity" and v not in stats.get("variants", {}):
                    continue
                label = f"{name} ({arm})"
                if v not in stats.get("variants", {}):
                    lines.append(f"| {label} | {v} | {sel} | not run | | | | | | | |")
                    continue
                row = stats["variants"][v]
                g, r = table[f"{v}->full"], table[f"R({v})->full"]
                loss = row.get("pair_loss_vs_random")
                lines.append(
                    f"| {label} | {v} | {sel} | {_fmt(g['confusions'])} | {_fmt(r['confusions'])} "
                    f"| {_fmt(ff.get('confusions'))} | {row['vs_random']['mean_difference']:+.1f} "
                    f"({_p(row['vs_random']['holm_t_test_p'])}; {_p(row['vs_random']['holm_wilcoxon_p'])}) "
                    f"| {row['vs_full']['mean_difference']:+.1f} ({_p(row['vs_full']['holm_t_test_p'])}) "
                    f"| {_fmt(g['accuracy'], digits=2)} ({row['accuracy_vs_full']['mean_difference']:+.2f}) "
                    f"| {'–' if loss is None else format(loss['mean_difference'], '+.4f')} "
                    f"| {'yes' if row['success'] else 'no'} |")
    lines += ["", "| setting (arm) | start (final checkpoint): accuracy %, confusions | full (1 ep) | full→full |",
              "|---|---|---|---|"]
    for name, setting in report.get("settings", {}).items():
        starts = list(setting.get("start_test", {}).values())
        start = (f"{100 * np.mean([s['accuracy'] for s in starts]):.2f}, "
                 f"{sum(s['a_to_b'] + s['b_to_a'] for s in starts)}") if starts else "–"
        for arm, stats in setting.get("arms", {}).items():
            cells = [f"{_fmt(stats['table'][n]['accuracy'], digits=2)}, {_fmt(stats['table'][n]['confusions'])}"
                     if n in stats["table"] else "–" for n in ("full", "full->full")]
            lines.append(f"| {name} ({arm}) | {start} | {cells[0]} | {cells[1]} |")
    lines += ["", "Their rows (the paper, for comparison; no random control was reported):", "",
              "| setting | pair | curated→full confusions | full→full confusions | curated→full accuracy % "
              "| full→full accuracy % |", "|---|---|---|---|---|---|"]
    for row in PAPER["rows"]:
        ff, cf = row["full→full"], row["curated→full"]
        lines.append(f"| {row['setting']} — THEIR numbers, not ours | {row['pair']} | {cf['confusions']} "
                     f"| {ff['confusions']} | {cf['accuracy_pct']} | {ff['accuracy_pct']} |")
    return "\n".join(lines)


def conclusion(report: dict[str, Any], guided: list[str]) -> str:
    """Plain sentences from the numbers: did any I2X-guided variant beat random removal (primary first)?"""
    out = []
    for name, setting in report.get("settings", {}).items():
        stats = setting.get("arms", {}).get("main")
        if not stats or not stats.get("variants"):
            out.append(f"{name}: no comparison ({setting.get('status', 'not run')}).")
            continue
        rows = stats["variants"]
        won = [v for v in guided if rows.get(v, {}).get("success")]
        beat_r = [v for v in guided if rows.get(v, {}).get("beats_random")]
        ran = [v for v in guided if v in rows]
        text = (f"{name} ({setting['role']}): " + (
            f"I2X-guided curation beat random removal and full→full with ≤ the allowed accuracy drop: {', '.join(won)}."
            if won else f"no I2X-guided variant ({', '.join(ran) or 'none ran'}) met the success criterion"
            + (f"; {', '.join(beat_r)} beat random removal alone" if beat_r else
               "; none beat random removal significantly (Holm-corrected paired t-test)") + "."))
        if "V4" in rows:
            text += (" The margin control V4 " + ("did" if rows["V4"]["beats_random"] else "did not")
                     + " beat random removal, so the protocol " + ("can" if rows["V4"]["beats_random"] else
                                                                   "could not show that it can")
                     + " detect a targeted effect in this setting.")
        if setting.get("excluded_splits"):
            text += f" Split(s) {setting['excluded_splits']} were stopped by the validation gate and left out."
        out.append(text)
    return " ".join(out)


def _selection_text(preps: list[dict], v: str) -> str:
    if any("no_samples" in p["selections"][v] for p in preps):
        return "; ".join(p["selections"][v]["no_samples"] for p in preps if "no_samples" in p["selections"][v])
    per_class = [list(p["selections"][v]["summary"]["per_class"].values()) for p in preps]
    return " / ".join(f"{sum(c[i]['removed'] for c in per_class)} of {sum(c[i]['of'] for c in per_class)}"
                      for i in range(2))


def study_report(plan, origin: dict, preps: dict, gate: dict, choice: dict, machine: dict, wall: float,
                 runs_of: Callable[..., dict], tests_of: Callable[..., dict]) -> dict[str, Any]:
    """The results JSON: per setting its splits, selections and arms' statistics; the choice; the paper's rows.

    ``runs_of(setting, split, arm, seed)`` and ``tests_of(...)`` read a seed's cached validation run and test
    scores; ``preps[(name, split)]`` are the prepared splits, ``gate[(name, split)]`` their gate decisions.
    """
    settings, seconds = {}, {"wall_this_invocation": wall}
    for s in plan.settings:
        splits_ = {k: {**{key: preps[(s.name, k)][key] for key in ("pair", "pair_names", "pair_chosen_on", "sizes",
                                                                   "base_final_lr", "convergence", "start_validation",
                                                                   "uncertain_for_pair", "uncertain_total", "seconds")},
                       "gate": gate[(s.name, k)],
                       "selections": {v: sel.get("summary", sel) for v, sel in preps[(s.name, k)]["selections"].items()}}
                   for k in s.split_seeds}
        entry = {"role": s.role, "dataset": s.dataset, "model": s.model, "splits": splits_}
        for k in s.split_seeds:
            for part, value in preps[(s.name, k)]["seconds"].items():
                seconds[part] = seconds.get(part, 0.0) + value
        usable = [k for k in s.split_seeds if gate[(s.name, k)]["passed"]]
        if not usable:
            settings[s.name] = {**entry, "status": "stopped by the gate: fine-tuning lowers validation accuracy by "
                                "itself at every planned learning rate; no test number was computed"}
            continue
        entry["selections"] = {v: _selection_text([preps[(s.name, k)] for k in usable], v) for v in plan.variants}
        entry["arms"] = {}
        for arm, seeds, variants in plan.arms(s):
            tests = [{seed: tests_of(s, k, arm, seed) for seed in range(seeds)} for k in usable]
            entry["arms"][arm] = arm_statistics(pooled(tests), variants, plan.alpha, plan.max_accuracy_drop_pt,
                                                plan.min_seeds)
            entry["arms"][arm]["fine_tuning"] = {"lr": [gate[(s.name, k)]["lr"] for k in usable] if arm == "main"
                                                 else plan.sensitivity.lr,
                                                 "optimizer_state": plan.fine_tuning.optimizer_state if arm == "main"
                                                 else plan.sensitivity.optimizer_state}
        entry["start_test"] = {k: tests_of(s, k, "main", 0)["start"] for k in usable}
        entry["excluded_splits"] = [k for k in s.split_seeds if k not in usable]
        entry["status"] = "complete"
        settings[s.name] = entry
        for k in usable:  # CPU-side seconds of the fine-tuning units, summed over workers
            for arm, seeds, _ in plan.arms(s):
                seconds[f"fine_tuning_{arm}"] = seconds.get(f"fine_tuning_{arm}", 0.0) + sum(
                    runs_of(s, k, arm, seed)["seconds"] for seed in range(seeds))
    out = {"what": "Issue 11: the pre-registered fine-tuning study (I2X-guided curation vs random removal).",
           "plan": origin, "status": "complete", "machine": machine,
           "chosen_variant": choice["chosen_variant"], "choice": choice, "settings": settings, "paper": PAPER,
           "seconds": seconds}
    out["summary"] = {"markdown": markdown(out), "conclusion": conclusion(out, plan.guided_variants)}
    return out
