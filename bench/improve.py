"""The pre-registered fine-tuning study of issue 11 (bench/improve_plan.md), end to end and resumable.

    nice -n 10 .venv/bin/python bench/improve.py --plan bench/improve_plan.md            # the study
    .venv/bin/python bench/improve.py --plan bench/improve_plan.md --estimate             # projection only

Stages, every finished piece cached under the plan's ``cache`` folder (a stop loses only the pieces
in progress; a cache made under another plan or another I2X definition is refused, ``--fresh`` clears it):

1. **prepare**, per setting and split: splits checked disjoint → base training (cosine learning rate,
   a checkpoint per epoch, optimiser state saved) → the calibrated explanation → the target pair
   (fixed, or chosen on validation) → selection signals → every variant's removal set;
2. **gate** (validation): ``full (1 ep)`` at the base's final lr × each multiplier in turn until one passes;
3. **runs** (validation): per seed ``full``, ``full->full``, ``V->full`` and ``R(V)->full`` for every variant
   that found samples, and the sensitivity arm; every fine-tuned model is saved;
4. **choose** (validation): the default variant of ``i2x improve`` → ``choices.json``;
5. **test**: only now is the test split scored, once per saved model;
6. statistics (paired t-test, Wilcoxon, Holm) and the table → the plan's ``results`` JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from improve_plan import (COMMITTED_PLAN, Setting, StudyError, StudyPlan, calibrated_uncertain,  # noqa: E402
                          check_results_path, read_plan, resolve)
from improve_table import choose_variant, pooled, study_report  # noqa: E402

from i2x_plugin import I2X, I2XConfig, StructuredExplanation  # noqa: E402
from i2x_plugin.training.checkpoints import checkpoint_lr, default_load_func, resolve_checkpoints  # noqa: E402
from i2x_plugin.improve.curation import CurationSet, CurationTarget  # noqa: E402
from i2x_plugin.training.data import ImageDataset, load_dataset  # noqa: E402
from i2x_plugin.improve.finetune import FineTuneConfig, check_disjoint, evaluate, fine_tune  # noqa: E402
from i2x_plugin.training.models import build_model, default_feature_layer  # noqa: E402
from i2x_plugin.app.run import stratified_indices  # noqa: E402
from i2x_plugin.improve.selection import NoSamplesError, pair_signals, random_control, select  # noqa: E402
from i2x_plugin.training.loop import seeded, train_with_checkpoints  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)  # atomic: a crash never leaves a half-written piece


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# --- data and cache layout -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def splits(dataset: str, test_fraction: float | None, validation_fraction: float,
           split_seed: int) -> tuple[ImageDataset, ImageDataset, ImageDataset]:
    """(train, validation, test): validation is stratified from the training data; all checked disjoint."""
    if test_fraction is None:
        pool, test = load_dataset(dataset, train=True), load_dataset(dataset, train=False)
    else:
        data = load_dataset(dataset)
        rest, held = stratified_indices(data.labels.numpy(), round(test_fraction * len(data)), split_seed)
        pool, test = data.subset(rest, f"{data.name}-pool"), data.subset(held, f"{data.name}-test")
    rest, held = stratified_indices(pool.labels.numpy(), round(validation_fraction * len(pool)), split_seed)
    train, val = pool.subset(rest, f"{pool.name}-train"), pool.subset(held, f"{pool.name}-validation")
    check_disjoint(train, val, ("training split", "validation split"))
    check_disjoint(train, test, ("training split", "test split"))
    check_disjoint(val, test, ("validation split", "test split"))
    return train, val, test


def _splits(s: Setting, split: int) -> tuple[ImageDataset, ImageDataset, ImageDataset]:
    return splits(s.dataset, s.test_fraction, s.validation_fraction, split)


def root(plan: StudyPlan, s: Setting, split: int) -> Path:
    return resolve(plan.cache) / s.key / f"split-{split}"


def _model(s: Setting, train: ImageDataset) -> torch.nn.Module:
    return build_model(s.model, int(train.images.shape[1]), train.num_classes, int(train.images.shape[-1]))


def _final(plan: StudyPlan, s: Setting, split: int) -> Path:
    return resolve_checkpoints(root(plan, s, split) / "checkpoints")[-1].path


def _curation(prep: dict, variant: str, labels: np.ndarray) -> CurationSet:
    a, b = prep["pair"]
    return CurationSet(CurationTarget(a, b, (), 0), None, np.asarray(prep["selections"][variant]["removed"]),
                       labels, variant=variant)


# --- 1. prepare ------------------------------------------------------------------------------------------


def _pair_on_validation(explanation: StructuredExplanation, confusion: np.ndarray) -> tuple[int, int]:
    """The most confused validation pair among pairs with uncertain prototypes (else among all pairs)."""
    with_uncertain = {(min(u.a, u.b), max(u.a, u.b)) for u in explanation.uncertain}
    pairs = sorted(with_uncertain) or [(a, b) for a in range(len(confusion)) for b in range(a + 1, len(confusion))]
    return max(pairs, key=lambda p: (int(confusion[p[0], p[1]] + confusion[p[1], p[0]]), -p[0], -p[1]))


def prepare(plan: StudyPlan, s: Setting, split: int) -> dict:
    """Base model, explanation, pair, signals and removal sets of one split (cached as prepare.json)."""
    here = root(plan, s, split)
    done = _read(here / "prepare.json")
    if done is not None:
        return done
    seconds: dict[str, float] = {}
    train, val, _ = _splits(s, split)
    with seeded(split):  # initial weights
        model = _model(s, train)
    ckpts = here / "checkpoints"
    if not (here / "checkpoints.json").is_file():  # resumable: training and the explanation are kept apart
        t = time.perf_counter()
        log(f"{s.name} split {split}: base training, {s.base.epochs} epochs on {len(train)} images")
        shutil.rmtree(ckpts, ignore_errors=True)
        train_with_checkpoints(model, train, ckpts, s.base.epochs, s.base.lr, s.base.batch_size, seed=split,
                               final_lr=s.base.final_lr)
        _write(here / "checkpoints.json", {"seconds": time.perf_counter() - t})
    seconds["base_training"] = _read(here / "checkpoints.json")["seconds"]
    infos = resolve_checkpoints(ckpts)
    convergence = []
    for info in infos[-3:]:
        default_load_func(model, info.path)
        convergence.append({"epoch": info.epoch, "validation_accuracy": evaluate(model, val, (0, 1))["accuracy"]})
    if not (here / "explanation.json").is_file():
        t = time.perf_counter()
        probe = (np.arange(len(train)) if s.probe_size is None
                 else stratified_indices(train.labels.numpy(), s.probe_size, seed=1)[1])
        log(f"{s.name} split {split}: I2X on {len(probe)} probe images × {len(infos)} checkpoints")
        I2X(model, default_feature_layer(model), config=I2XConfig(k=s.k, seed=0)).explain(
            ckpts, train.subset(probe), class_names=train.class_names, sample_ids=probe,
            run_id=f"{s.key}-split{split}", model_name=s.model).save(here / "explanation")
        _write(here / "explanation.json", {"seconds": time.perf_counter() - t})
    explanation = StructuredExplanation.load(here / "explanation")
    seconds["explanation"] = _read(here / "explanation.json")["seconds"]
    t = time.perf_counter()
    default_load_func(model, infos[-1].path)
    with torch.no_grad():
        preds = torch.cat([model(val.images[i : i + 512]).argmax(1) for i in range(0, len(val), 512)]).numpy()
    confusion = np.zeros((train.num_classes,) * 2, dtype=np.int64)
    np.add.at(confusion, (val.labels.numpy(), preds), 1)
    pair = tuple(sorted(s.pair)) if s.pair is not None else _pair_on_validation(explanation, confusion)
    signals = pair_signals(explanation, model, train, pair, intensities=True)
    selections = {}
    for v in plan.variants:
        try:
            cur = select(v, explanation, signals, plan.cap, 1, 1, plan.common_ratio, plan.rare_fraction,
                         train.class_names)
            selections[v] = {"removed": cur.removed.tolist(), "summary": cur.summary()}
        except NoSamplesError as err:  # reported as such; nothing is substituted
            selections[v] = {"no_samples": str(err)}
    seconds["selection"] = time.perf_counter() - t
    a, b = pair
    record = {"pair": list(pair), "pair_names": [train.class_names[a], train.class_names[b]],
              "pair_chosen_on": "plan" if s.pair is not None else "validation",
              "sizes": {"train": len(train), "validation": len(val)}, "base_final_lr": checkpoint_lr(infos[-1].path),
              "convergence": convergence, "start_validation": evaluate(model, val, pair),
              "uncertain_for_pair": sum({u.a, u.b} == {a, b} for u in explanation.uncertain),
              "uncertain_total": len(explanation.uncertain), "selections": selections, "seconds": seconds}
    _write(here / "prepare.json", record)
    return record


# --- 2.–3. validation runs -------------------------------------------------------------------------------


def _fine_tune_config(plan: StudyPlan, lr: float, state: str) -> FineTuneConfig:
    return FineTuneConfig(lr=lr, optimizer_state=state, batch_size=plan.fine_tuning.batch_size)


def gate_unit(plan: StudyPlan, s: Setting, split: int, multiplier: float, seed: int) -> dict:
    """``full (1 ep)`` at base lr × multiplier, scored on validation."""
    path = root(plan, s, split) / "gate" / f"lr-times-{multiplier:g}" / f"seed-{seed}.json"
    if (done := _read(path)) is not None:
        return done
    prep = prepare(plan, s, split)
    train, val, _ = _splits(s, split)
    lr = prep["base_final_lr"] * multiplier
    runs = fine_tune(_model(s, train), _final(plan, s, split), train, val, tuple(prep["pair"]), {"full": ("full",)},
                     {}, _fine_tune_config(plan, lr, plan.fine_tuning.optimizer_state), [seed])
    record = {"lr": lr, "multiplier": multiplier, "seed": seed, "validation": asdict(runs[0])}
    _write(path, record)
    return record


def gate_decision(s: Setting, start_accuracy: float, records: list[dict]) -> dict:
    acc = np.array([100 * r["validation"]["accuracy"] for r in records])
    std = float(acc.std(ddof=1))
    passed = bool(acc.mean() >= 100 * start_accuracy and std <= s.gate.max_std_pt)
    return {"lr": records[0]["lr"], "multiplier": records[0]["multiplier"], "passed": passed,
            "start_validation_accuracy_pct": 100 * start_accuracy, "full_1ep_mean_pct": float(acc.mean()),
            "full_1ep_std_pct": std, "max_std_pt": s.gate.max_std_pt}


def run_unit(plan: StudyPlan, s: Setting, split: int, arm: str, seed: int, lr: float) -> dict:
    """One seed of an arm: every schedule, scored on validation; the models are saved for the test stage."""
    here = root(plan, s, split) / "runs" / arm
    if (done := _read(here / f"seed-{seed}.json")) is not None:
        return done
    prep = prepare(plan, s, split)
    train, val, _ = _splits(s, split)
    labels = train.labels.numpy()
    state = plan.fine_tuning.optimizer_state if arm == "main" else plan.sensitivity.optimizer_state
    variants = plan.variants if arm == "main" else plan.sensitivity.variants
    schedules, removals = {"full": ("full",), "full->full": ("full", "full")}, {}
    for v in (v for v in variants if "removed" in prep["selections"][v]):
        cur = _curation(prep, v, labels)
        schedules[f"{v}->full"], schedules[f"R({v})->full"] = (v, "full"), (f"R({v})", "full")
        removals[v] = lambda seed_, c=cur: c.keep_mask
        removals[f"R({v})"] = lambda seed_, c=cur: random_control(c, seed_).keep_mask
    t = time.perf_counter()
    runs = fine_tune(_model(s, train), _final(plan, s, split), train, val, tuple(prep["pair"]), schedules, removals,
                     _fine_tune_config(plan, lr, state), [seed], save_dir=here / f"seed-{seed}")
    record = {"arm": arm, "seed": seed, "lr": lr, "optimizer_state": state, "seconds": time.perf_counter() - t,
              "validation": [asdict(r) for r in runs]}
    _write(here / f"seed-{seed}.json", record)
    log(f"{s.name} split {split} [{arm}] seed {seed}: {len(runs)} models in {record['seconds']:.0f} s")
    return record


# --- 5. test ---------------------------------------------------------------------------------------------


def test_unit(plan: StudyPlan, s: Setting, split: int, arm: str, seed: int) -> dict:
    """Score every saved model of a finished validation unit on the test split (after choices.json exists)."""
    path = root(plan, s, split) / "test" / arm / f"seed-{seed}.json"
    if (done := _read(path)) is not None:
        return done
    if not (resolve(plan.cache) / "choices.json").is_file():
        raise StudyError("The test split is scored only after every choice is written (choices.json).")
    prep = prepare(plan, s, split)
    train, _, test = _splits(s, split)
    model = _model(s, train)
    scores = {}
    for run in _read(root(plan, s, split) / "runs" / arm / f"seed-{seed}.json")["validation"]:
        default_load_func(model, run["checkpoint"])
        scores[run["schedule"]] = evaluate(model, test, tuple(prep["pair"]))
    if arm == "main" and seed == 0:
        default_load_func(model, _final(plan, s, split))
        scores["start"] = evaluate(model, test, tuple(prep["pair"]))
    _write(path, {"seed": seed, "test": scores})
    return {"seed": seed, "test": scores}


# --- orchestration ---------------------------------------------------------------------------------------


def _init_worker() -> None:
    torch.set_num_threads(1)  # the cores are shared: one thread per worker process


class Workers:
    """``jobs`` worker processes for the whole invocation (spawned once: no forked torch thread pools)."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.pool = (ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker)
                     if jobs > 1 else None)

    def run(self, fn, units: list[tuple]) -> list:
        """``fn(*unit)`` for every unit, in order; a failed unit raises its error here."""
        if self.pool is None or len(units) <= 1:
            return [fn(*u) for u in units]
        return [f.result() for f in [self.pool.submit(fn, *u) for u in units]]

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _check_cache(plan: StudyPlan, fresh: bool) -> None:
    cache = resolve(plan.cache)
    for s in plan.settings:
        where, fingerprint = cache / s.key, plan.fingerprint(s)
        if fresh and where.exists():
            shutil.rmtree(where)
        stored = _read(where / "plan.json")
        if stored is not None and stored != json.loads(json.dumps(fingerprint)):
            raise StudyError(f"{where} was made under another plan, torch or I2X definition; rerun with --fresh to "
                             "discard it (a changed plan is a new pre-registration: report both).")
        _write(where / "plan.json", fingerprint)
    if fresh:
        (cache / "choices.json").unlink(missing_ok=True)


def gates(plan: StudyPlan, preps: dict, workers: Workers) -> dict:
    """Per split: the first learning-rate multiplier whose ``full (1 ep)`` passes the validation gate."""
    decided, attempts = {}, {key: [] for key in preps}
    for multiplier in plan.fine_tuning.lr_multipliers:
        pending = [key for key in preps if key not in decided]
        units = [(plan, plan.setting(name), split, multiplier, seed) for name, split in pending
                 for seed in range(plan.setting(name).gate.seeds)]
        records = workers.run(gate_unit, units)
        for name, split in pending:
            mine = [r for u, r in zip(units, records) if (u[1].name, u[2]) == (name, split)]
            decision = gate_decision(plan.setting(name), preps[(name, split)]["start_validation"]["accuracy"], mine)
            attempts[(name, split)].append(decision)
            if decision["passed"]:
                decided[(name, split)] = {**decision, "attempts": attempts[(name, split)]}
    return {key: decided.get(key, {"passed": False, "attempts": attempts[key]}) for key in preps}


def _validation(plan: StudyPlan, s: Setting, split: int, arm: str, seeds: int) -> dict[int, dict[str, dict]]:
    return {seed: {r["schedule"]: r for r in _read(root(plan, s, split) / "runs" / arm / f"seed-{seed}.json")
                   ["validation"]} for seed in range(seeds)}


def choose(plan: StudyPlan, preps: dict, gate: dict) -> dict:
    """The validation choices (gate, default variant), written to choices.json before any test score."""
    s, split = plan.primary, plan.primary.split_seeds
    usable = [k for k in split if gate[(s.name, k)]["passed"]]
    data = pooled([_validation(plan, s, k, "main", s.seeds) for k in usable]) if usable else {}
    removed = {v: sum(len(preps[(s.name, k)]["selections"][v].get("removed", [])) for k in usable)
               for v in plan.guided_variants}
    choice = choose_variant(data, plan.guided_variants, plan.max_accuracy_drop_pt, removed)
    choice["gate"] = {f"{name} split {k}": g for (name, k), g in gate.items()}
    path = resolve(plan.cache) / "choices.json"
    stored = _read(path)
    if stored is not None and stored != json.loads(json.dumps(choice)):
        raise StudyError(f"{path} differs from the choice recomputed from the cached validation runs: the cache "
                         "changed after the choice was written. Rerun with --fresh.")
    _write(path, choice)
    return choice


def estimate(plan: StudyPlan) -> str:
    """Time a training epoch and an evaluation per setting on ≤ 2,000 images; project the whole study.

    CPU time of this process (one thread), not wall time: the projection is for two free cores, whatever
    else the machine runs while it is measured."""
    torch.set_num_threads(1)
    lines, total = ["| setting | splits | CPU per train image (1 thread) | CPU per eval image | images trained | images "
                    "evaluated | projected CPU s |", "|---|---|---|---|---|---|---|"], 0.0
    for s in plan.settings:
        train, val, test = _splits(s, s.split_seeds[0])
        sample = train.subset(np.arange(min(2000, len(train))))
        model = _model(s, train)
        cfg = FineTuneConfig(lr=1e-3, optimizer_state="fresh")
        t = time.process_time()
        fine_tune(model, "", sample, sample.subset(np.arange(2)), (0, 1), {"full": ("full",)}, {}, cfg, [0],
                  load_func=lambda m, p: None)
        per_train = (time.process_time() - t) / len(sample)
        t = time.process_time()
        evaluate(model, sample, (0, 1))
        per_eval = (time.process_time() - t) / len(sample)
        n, arms = len(train), plan.arms(s)
        probe = s.probe_size or n
        models = sum(seeds * (2 + 2 * len(v)) for _, seeds, v in arms)
        trained = n * (s.base.epochs + s.gate.seeds + sum(seeds * (2 + 4 * len(v)) for _, seeds, v in arms)) \
            + probe * (s.base.epochs + 1) + 2 * n * 0.2
        evaluated = len(val) * (3 + s.gate.seeds + models) + len(test) * (models + 1) + n
        cpu = len(s.split_seeds) * (trained * per_train + evaluated * per_eval)
        total += cpu
        lines.append(f"| {s.name} | {len(s.split_seeds)} | {per_train * 1e3:.2f} ms | {per_eval * 1e3:.2f} ms "
                     f"| {len(s.split_seeds) * trained:,.0f} | {len(s.split_seeds) * evaluated:,.0f} | {cpu:,.0f} |")
    lines.append(f"\nProjected: {total / 3600:.2f} CPU hours, ≈ {total / 2 / 3600:.2f} h on 2 worker processes "
                 "(if both cores are free).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan", default=str(COMMITTED_PLAN), help="the plan file (default: bench/improve_plan.md)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one torch thread each (default 2)")
    parser.add_argument("--estimate", action="store_true", help="time small pieces, print the projection, stop")
    parser.add_argument("--until", choices=["validation", "test"], default="test",
                        help="'validation': stop after choices.json (no test number is computed)")
    parser.add_argument("--fresh", action="store_true", help="discard this plan's cache first")
    args = parser.parse_args(argv)
    try:
        plan, origin = read_plan(args.plan)
        results = resolve(plan.results)
        check_results_path(Path(args.plan), results)
        if args.estimate:
            print(estimate(plan))
            return 0
        if plan.require_calibrated_explanation and not calibrated_uncertain():
            raise StudyError("The plan needs the calibrated explanation (issue 9: uncertain prototypes with q-values), "
                             "and this version's UncertainPrototype has no q field. Merge issue 9 first; smoke plans "
                             "set require_calibrated_explanation: false.")
        torch.set_num_threads(1)
        started = time.perf_counter()
        _check_cache(plan, args.fresh)
        keys = [(s.name, k) for s in plan.settings for k in s.split_seeds]
        with Workers(args.jobs) as workers:
            log(f"prepare: {len(keys)} split(s)")
            preps = dict(zip(keys, workers.run(prepare, [(plan, plan.setting(n), k) for n, k in keys])))
            log("gate (validation)")
            gate = gates(plan, preps, workers)
            units = [(plan, s, k, arm, seed, gate[(s.name, k)]["lr"] if arm == "main" else plan.sensitivity.lr)
                     for s in plan.settings for k in s.split_seeds if gate[(s.name, k)]["passed"]
                     for arm, seeds, _ in plan.arms(s) for seed in range(seeds)]
            log(f"runs (validation): {len(units)} seed units")
            workers.run(run_unit, units)
            choice = choose(plan, preps, gate)
            log(f"chosen on validation: {choice['chosen_variant']} (choices.json written)")
            if args.until == "validation":
                print(json.dumps(choice, indent=1))
                return 0
            log("test: scoring the saved models once")
            workers.run(test_unit, [u[:5] for u in units])
        machine = {"cpu": platform.processor() or platform.machine(), "cores_visible": os.cpu_count(),
                   "workers": args.jobs, "torch_threads_per_worker": 1, "torch": torch.__version__,
                   "python": sys.version.split()[0]}
        out = study_report(plan, origin, preps, gate, choice, machine, time.perf_counter() - started,
                           lambda s, k, arm, seed: _read(root(plan, s, k) / "runs" / arm / f"seed-{seed}.json"),
                           lambda s, k, arm, seed: test_unit(plan, s, k, arm, seed)["test"])
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _write(results, out)
    results.with_suffix(".md").write_text(out["summary"]["markdown"] + "\n\n" + out["summary"]["conclusion"] + "\n")
    print(out["summary"]["markdown"] + "\n\n" + out["summary"]["conclusion"], flush=True)
    log(f"wrote {results} and {results.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
