"""What the final model relies on (issue 21): each prototype's deletion, on each class, on held-out samples.

For every class c and every prototype k present in c's probe samples, k's cells are deleted at the explained
layer of the final model (the :class:`~.faithfulness.Deleter` of the deletion tests: only the layers after it
rerun) and the *effect* is the mean drop in the softmax confidence of c on c's samples. Its null is the same
number of random cells of the same samples (each sample's cells shuffled, ``reliance_random_draws`` times,
then "deleting k" deletes as many cells at random): ``p`` is the one-sided Wilcoxon signed-rank test of the
per-sample difference (prototype drop − mean random drop), and against the same deletion's effect on c's
confidence on the other classes' samples (Mann–Whitney U; the larger p counts), ``q`` Benjamini–Hochberg over
every tested edge. An edge is *claimed* when q ≤ ``fdr_q`` and its effect beats the random cells' by at least
``reliance_min_effect`` (0.01): on SmallCNNs trained on shuffled digit labels the tests still find edges
(7–14 of 120 per seed, 5 seeds), since such a model's response to a deletion depends on the digit's shape, but
they beat the random cells by at most 0.0003 of confidence.

Cross-fitted: each class's samples are split into two seeded halves. Everything chosen by effect size (an
edge's ``rank``, the class's top set) is chosen on the *selection* half; effects, p and q are measured on the
*held-out* half (``reliance_held_out`` of the samples). The top set of each class is also deleted as a whole
and compared with area-matched random prototype sets and static saliency's top set
(:func:`~.faithfulness.delete_and_compare`), as the deletion tests of the claims are.

Per sample (``RelianceResult.samples``, for ``sample_evidence``): the prototypes it holds whose deletion moves
its prediction most toward its runner-up (the predicted class's confidence drop minus the runner-up's).

When it formed: each claimed edge is deleted again at every checkpoint (same cells, same held-out samples, the
first ``FORMATION_DRAWS`` random cell draws)
and ``formed_at`` is the first checkpoint from which, through the last one, its p stays at or below ``fdr_q / T``
(Bonferroni over the T checkpoints it is tested at) *and* its effect is at least half its final effect.
Significance alone dates too early: with 100 held-out samples the paired test also finds the small, systematic
effects of the untrained network's random weights (on the planted shapes, 62 % of the significant edges were
"significant" at checkpoint 0 under Bonferroni alone). ``checkpoint0_false_rate`` is the share of edges that
pass the rule at the untrained checkpoint 0, where no reliance learnt from the labels can exist.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TypeVar
from concurrent.futures import ThreadPoolExecutor
from queue import Queue

import numpy as np
import torch
from scipy.stats import false_discovery_control, mannwhitneyu, wilcoxon
from torch import nn

from ..method.distributed import available_cores
from ..method.evidence import FaithfulnessResult, RelianceEdge, RelianceResult, SampleReliance
from ..training.checkpoints import default_load_func
from .faithfulness import Deleter, delete_and_compare, static_prototypes

MEASURE = "softmax confidence of the class"
HALF = 0.5  # formed: significant and at least half its final effect (a tiny effect of the untrained net is not it)
MIN_NONZERO = 5  # a Wilcoxon test on fewer non-zero differences cannot reach 5 %: p = 1
FORMATION_DRAWS = 2  # random cell draws per checkpoint when dating (the final test uses reliance_random_draws)
SAMPLE_TOP = 3  # prototypes kept per sample (the ones whose deletion moves its prediction most)
T = TypeVar("T")


def split_class(labels: np.ndarray, cls: int, held_out: float, cap: int, min_samples: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray] | str:
    """The class's (selection, held-out) rows, seeded per class, or the reason it is too small to cross-fit."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out={held_out} must lie strictly between 0 and 1 (the share of samples held out).")
    rows = np.flatnonzero(labels == cls)
    if len(rows) < 2 * min_samples:
        return f"class {cls}: {len(rows)} samples < 2 × min_scope_samples = {2 * min_samples}; too few to cross-fit"
    rng = np.random.default_rng([seed, 21, cls])
    rows = rng.permutation(rows)[:cap]
    n_held = int(round(held_out * len(rows)))
    if min(n_held, len(rows) - n_held) < min_samples:
        return (f"class {cls}: a held-out share of {held_out:g} of {len(rows)} samples leaves a half under "
                f"min_scope_samples = {min_samples}; too few to cross-fit")
    return np.sort(rows[n_held:]), np.sort(rows[:n_held])


def shuffled_cells(assignments: np.ndarray, draws: int, seed: int) -> list[torch.Tensor]:
    """``draws`` copies of the assignment maps with each sample's cells shuffled (seeded): deleting a prototype in
    one deletes as many cells of each sample as the prototype holds there, at random places."""
    rng = np.random.default_rng([seed, 21, 0xCE11])
    n, h, w = assignments.shape
    flat = assignments.reshape(n, h * w)
    out = []
    for _ in range(draws):
        order = np.argsort(rng.random((n, h * w)), axis=1)
        out.append(torch.as_tensor(np.take_along_axis(flat, order, 1).reshape(n, h, w).astype(np.int64)))
    return out


class _Drops:
    """Per-sample drops of every class's confidence on fixed rows, for a prototype and for its random cells
    (on ``null_rows``, the last rows of ``rows``; default all of them)."""

    def __init__(self, deleter: Deleter, rows: np.ndarray, shuffled: list[torch.Tensor], null_rows: int | None = None):
        self.deleter, self.rows, self.shuffled = deleter, rows, shuffled
        self.base = self._confidence(deleter.logits(rows))
        self.null_from = 0 if null_rows is None else len(rows) - null_rows

    @staticmethod
    def _confidence(logits: torch.Tensor) -> np.ndarray:
        return torch.softmax(logits, 1).numpy().astype(np.float64)

    def __call__(self, prototype: int) -> tuple[np.ndarray, np.ndarray]:
        """``(len(rows), C)`` drops when the prototype's cells are deleted, and ``(null_rows, C)``, the mean over the
        random cells."""
        own = self.base - self._confidence(self.deleter.logits(self.rows, [prototype]))
        rows, base = self.rows[self.null_from :], self.base[self.null_from :]
        random = np.mean([base - self._confidence(self.deleter.logits(rows, [prototype], cells))
                          for cells in self.shuffled], 0)
        return own, random


def edge_p(diff: np.ndarray, labels: np.ndarray, present: np.ndarray, cls: int) -> tuple[float, float]:
    """One-sided p-values of an edge from ``diff`` (per sample: prototype drop − random drop of ``cls``'s confidence):
    against as many random cells on the class's samples (Wilcoxon signed-rank), and against the same deletion's
    effect on ``cls``'s confidence on the other classes' samples that hold the prototype (Mann–Whitney U)."""
    mine, others = diff[labels == cls], diff[(labels != cls) & present]
    random_p = 1.0 if np.count_nonzero(mine) < MIN_NONZERO else float(
        wilcoxon(mine, alternative="greater", zero_method="wilcox").pvalue)
    mine = diff[(labels == cls) & present]
    contrast_p = 1.0 if min(len(mine), len(others)) < MIN_NONZERO else float(
        mannwhitneyu(mine, others, alternative="greater").pvalue)
    return random_p, contrast_p


def reliance_edges(explanation, deleter: Deleter, shuffled: list[torch.Tensor], held_out: float, cap: int,
                   min_samples: int, seed: int) -> tuple[list[RelianceEdge], dict[int, tuple], list[str]]:
    """Every (prototype, class) edge measured on the held-out half (q filled in over the run), the halves of
    each class, and the classes skipped."""
    e, labels = explanation, np.asarray(explanation.labels)
    halves, skipped = {}, []
    for c in range(e.num_classes):
        split = split_class(labels, c, held_out, cap, min_samples, seed)
        if isinstance(split, str):
            skipped.append(split)
        else:
            halves[c] = split
    if not halves:
        return [], halves, skipped
    selection = np.concatenate([halves[c][0] for c in sorted(halves)])
    held = np.concatenate([halves[c][1] for c in sorted(halves)])
    rows = np.concatenate([selection, held])
    drops = _Drops(deleter, rows, shuffled, null_rows=len(held))  # the null is only tested on the held-out half
    measured: dict[int, list[tuple]] = {c: [] for c in halves}
    for k in np.flatnonzero(e.presence[rows].sum(0) > 0):
        own, random = drops(int(k))
        present = e.presence[rows, k] > 0
        for c in halves:
            sel_rows = (labels[rows] == c) & (np.arange(len(rows)) < len(selection))
            held_rows = np.arange(len(rows)) >= len(selection)
            if not present[sel_rows | ((labels[rows] == c) & held_rows)].any():
                continue  # the prototype is nowhere in the class: not an edge
            diff = own[held_rows, c] - random[:, c]
            in_c = labels[held] == c
            random_p, contrast_p = edge_p(diff, labels[held], present[held_rows], c)
            measured[c].append((int(k), float(own[sel_rows, c].mean()), float(own[held_rows, c][in_c].mean()),
                                float(random[in_c, c].mean()),
                                float(own[held_rows, c][~in_c & present[held_rows]].mean())
                                if (~in_c & present[held_rows]).any() else 0.0, random_p, contrast_p))
    edges = []
    for c in sorted(measured):
        for rank, (k, sel, effect, random_effect, contrast, random_p, contrast_p) in enumerate(
                sorted(measured[c], key=lambda m: (-m[1], m[0])), 1):
            edges.append(RelianceEdge(k, c, effect, random_effect, max(random_p, contrast_p), float("nan"), rank,
                                      sel, len(halves[c][1]), random_p=random_p, contrast_effect=contrast,
                                      contrast_p=contrast_p))
    if edges:
        q = false_discovery_control([edge.p for edge in edges], method="bh")
        edges = [dataclasses.replace(edge, q=float(v)) for edge, v in zip(edges, q)]
    return edges, halves, skipped


def top_sets(explanation, deleter: Deleter, edges: list[RelianceEdge], halves: dict[int, tuple], top: int,
             random_sets: int, seed: int) -> list[FaithfulnessResult]:
    """Per class: its ``top`` prototypes by selection-half effect, deleted together on the held-out half and
    compared with area-matched random prototype sets and with static saliency's top set (the deletion tests)."""
    e, rng, out = explanation, np.random.default_rng([seed, 21, 5]), []
    for c, (_selection, held) in sorted(halves.items()):
        chosen = [edge.prototype for edge in sorted((x for x in edges if x.cls == c), key=lambda x: x.rank)
                  if edge.selection_effect > 0][:top]
        if not chosen:
            continue
        static = static_prototypes(e.intensities[-1], e.presence, held, top)[: len(chosen)]
        result = delete_and_compare(deleter, "drivers", c, None, held, chosen, random_sets, rng, static)
        out.append(dataclasses.replace(result, kind="reliance"))
    return out


def sample_reliance(explanation, deleter: Deleter, per_sample: int = SAMPLE_TOP) -> list[SampleReliance]:
    """For every probe sample, the ``per_sample`` prototypes it holds whose deletion moves the final model's
    prediction most toward its runner-up (one pass per prototype over the samples holding it)."""
    e = explanation
    rows = np.arange(len(e.labels))
    base = torch.softmax(deleter.logits(rows), 1).numpy().astype(np.float64)
    order = np.argsort(-base, axis=1, kind="stable")
    predicted, runner_up = order[:, 0], order[:, 1]
    drops = np.full((len(rows), e.k, 2), np.nan)  # predicted, runner-up
    for k in np.flatnonzero(e.presence.sum(0) > 0):
        holding = np.flatnonzero(e.presence[:, k] > 0)
        after = torch.softmax(deleter.logits(holding, [int(k)]), 1).numpy().astype(np.float64)
        drops[holding, k, 0] = base[holding, predicted[holding]] - after[np.arange(len(holding)), predicted[holding]]
        drops[holding, k, 1] = base[holding, runner_up[holding]] - after[np.arange(len(holding)), runner_up[holding]]
    moves = np.where(np.isnan(drops[..., 0]), -np.inf, drops[..., 0] - drops[..., 1])
    out = []
    for i in rows:
        top = [int(k) for k in np.argsort(-moves[i], kind="stable")[:per_sample] if np.isfinite(moves[i, k])]
        out.append(SampleReliance(int(i), int(predicted[i]), int(runner_up[i]), top,
                                  [round(float(drops[i, k, 0]), 5) for k in top],
                                  [round(float(drops[i, k, 1]), 5) for k in top]))
    return out


def replay(explanation, model: nn.Module, images: torch.Tensor, deletion: str, device: torch.device | str | None,
           load_func: Callable[[nn.Module, str], None], measure: Callable[[Deleter], T]) -> list[T]:
    """``measure`` of a :class:`~.faithfulness.Deleter` of every checkpoint of the run, in checkpoint order.

    The checkpoints are independent, so on a CPU they are replayed side by side, one per core, each by its own
    copy of the model on one thread (the same numbers as one after the other; the heads are traced up front, one
    after the other, as tracing patches every module's call while it runs). The model is left holding the final
    checkpoint's weights."""
    e = explanation
    paths = [info.path for info in e.checkpoints]
    on_cpu = torch.device(device or next(model.parameters()).device).type == "cpu"
    workers = max(1, min(available_cores(), len(paths))) if on_cpu and isinstance(e.layer, str) else 1
    free: Queue[tuple[nn.Module, Deleter]] = Queue()
    for replica in [model] + [copy.deepcopy(model) for _ in range(workers - 1)]:
        free.put((replica, Deleter(replica, e.layer, images, e.labels, e.assignments, deletion,
                                   e.config.batch_size, device)))

    def at_checkpoint(path: str) -> T:
        replica, deleter = free.get()
        try:
            load_func(replica, path)
            replica.eval()
            deleter.forget()
            return measure(deleter)
        finally:
            free.put((replica, deleter))

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(at_checkpoint, paths))
    finally:
        load_func(model, paths[-1])
        model.eval()


def formed_at(series: list[tuple[float, float]], alpha: float) -> int | None:
    """The first checkpoint from which, through the last, ``(effect, p)`` passes: p ≤ alpha and at least half
    the final effect; None when the last one fails."""
    passing = np.array([p <= alpha and v >= HALF * series[-1][0] for v, p in series])
    failing = np.flatnonzero(~passing)
    return None if not passing[-1] else int(failing[-1] + 1) if len(failing) else 0


def class_points(explanation, edges: list[RelianceEdge], held: np.ndarray, own: np.ndarray, random: np.ndarray,
                 pos: np.ndarray, prototypes: list[int]) -> dict[tuple[int, int], tuple[float, float]]:
    """Each edge's ``(effect, p)`` on the ``held`` rows from one checkpoint's drops: ``own`` and ``random``
    ``(len(prototypes), rows, C)``, ``pos`` probe row → row."""
    labels, at, out = np.asarray(explanation.labels), pos[held], {}
    for x in edges:
        i, c = prototypes.index(x.prototype), x.cls
        mine, null = own[i, at], random[i, at]
        p = max(edge_p(mine[:, c] - null[:, c], labels[held], explanation.presence[held, x.prototype] > 0, c))
        out[x.prototype, c] = (float(mine[labels[held] == c, c].mean()), p)
    return out


def every_drop(deleter: Deleter, rows: np.ndarray, shuffled: list[torch.Tensor], prototypes: list[int],
               random_from: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(K', rows, C)`` confidence drops of deleting each prototype, and the mean over its random cells on the rows
    from ``random_from`` on."""
    drops = _Drops(deleter, rows, shuffled, null_rows=len(rows) - random_from)
    pairs = [drops(k) for k in prototypes]
    empty = np.zeros((0, len(rows), 0))
    return (np.stack([o for o, _ in pairs]), np.stack([r for _, r in pairs])) if pairs else (empty, empty)


def with_dates(edges: list[RelianceEdge], dated: list[RelianceEdge], measured: list[dict], alpha: float
               ) -> tuple[list[RelianceEdge], float | None]:
    """``edges`` with the ``dated`` ones' series from ``measured`` (one ``class_points`` per checkpoint) and their
    ``formed_at``, and the share of the dated edges that pass the rule at checkpoint 0."""
    out = {}
    for x in dated:
        series = [at[x.prototype, x.cls] for at in measured]
        out[x.prototype, x.cls] = dataclasses.replace(
            x, effect_by_checkpoint=[round(v, 6) for v, _ in series], p_by_checkpoint=[float(p) for _, p in series],
            formed_at=formed_at(series, alpha))
    rate = float(np.mean([passes_at(out[x.prototype, x.cls], 0, alpha) for x in dated])) if dated else None
    return [out.get((x.prototype, x.cls), x) for x in edges], rate


def formation(explanation, model: nn.Module, images: torch.Tensor, edges: list[RelianceEdge],
              halves: dict[int, tuple], shuffled: list[torch.Tensor], alpha: float, deletion: str,
              device: torch.device | str | None, load_func: Callable[[nn.Module, str], None]
              ) -> list[RelianceEdge]:
    """``edges`` with their effect and p at every checkpoint and ``formed_at`` (see the module docstring), the
    checkpoints replayed by :func:`replay`. The model is left holding the final checkpoint's weights."""
    held = np.concatenate([halves[c][1] for c in sorted(halves)]) if halves else np.zeros(0, dtype=np.int64)
    prototypes = sorted({x.prototype for x in edges})
    pos = np.full(len(explanation.labels), -1, dtype=np.int64)
    pos[held] = np.arange(len(held))

    def measure(deleter: Deleter) -> dict[tuple[int, int], tuple[float, float]]:
        own, random = every_drop(deleter, held, shuffled[:FORMATION_DRAWS], prototypes)
        return class_points(explanation, edges, held, own, random, pos, prototypes)

    return with_dates(edges, edges, replay(explanation, model, images, deletion, device, load_func, measure), alpha)[0]


def passes_at(edge: RelianceEdge, checkpoint: int, alpha: float) -> bool:
    """Whether a dated edge passes the formation rule at one checkpoint."""
    effect, final = edge.effect_by_checkpoint, edge.effect_by_checkpoint[-1]
    return edge.p_by_checkpoint[checkpoint] <= alpha and effect[checkpoint] >= HALF * final


def claimed_edges(edges: list[RelianceEdge], config) -> list[RelianceEdge]:
    """The edges claimed: q ≤ fdr_q and an effect at least ``reliance_min_effect`` above the random cells'."""
    return [x for x in edges if x.q <= config.fdr_q and x.effect - x.random_effect >= config.reliance_min_effect]


def reliance(explanation, model: nn.Module, images: torch.Tensor, device: torch.device | str | None = None,
             load_func: Callable[[nn.Module, str], None] = default_load_func, dates: bool = True) -> RelianceResult:
    """The reliance relation of ``model`` (the run's final weights, in eval mode) on its probe ``images``,
    settings from the run's config; with ``reliance_formation`` (and ``dates``: the pair relations date the class
    edges in their own replay when they run too), each significant edge dated over the run's checkpoints (loaded
    with ``load_func``; the model holds the final weights again after)."""
    cfg = explanation.config
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of passes of a small head: thread hand-offs cost more than they give
    try:
        deleter = Deleter(model, explanation.layer, images, explanation.labels, explanation.assignments,
                          cfg.deletion, cfg.batch_size, device)
        shuffled = shuffled_cells(np.asarray(explanation.assignments), cfg.reliance_random_draws, cfg.seed)
        edges, halves, skipped = reliance_edges(explanation, deleter, shuffled, cfg.reliance_held_out,
                                                2 * cfg.faithfulness_samples, cfg.min_scope_samples, cfg.seed)
        per_sample = sample_reliance(explanation, deleter)
        sets = top_sets(explanation, deleter, edges, halves, cfg.top_prototypes, cfg.faithfulness_random_sets,
                        cfg.seed)
        alpha = rate = None
        if cfg.reliance_formation and dates:
            alpha = cfg.fdr_q / len(explanation.checkpoints)
            significant = claimed_edges(edges, cfg)
            dated = formation(explanation, model, images, significant, halves, shuffled, alpha, cfg.deletion, device,
                              load_func)
            by_key = {(x.prototype, x.cls): x for x in dated}
            edges = [by_key.get((x.prototype, x.cls), x) for x in edges]
            rate = float(np.mean([passes_at(x, 0, alpha) for x in dated])) if dated else None
    finally:
        torch.set_num_threads(threads)
    return RelianceResult(MEASURE, cfg.deletion, cfg.reliance_held_out, cfg.seed, edges, sets, skipped, cfg.fdr_q,
                          alpha, rate, cfg.reliance_min_effect, per_sample)
