"""Step 2 of I2X: abstract prototypes from the final model's spatial features.

Features f(x_i) at the explained layer are stacked over probe samples and all h·w positions,
reduced by PCA, clustered by K-Means into K prototypes, and every position of every sample is
assigned to its nearest centre. The assignments stay fixed for every checkpoint of the sweep.

The pieces work on one batch at a time, so the probe set never has to be in memory:
:func:`fit_sample` picks the (seeded) feature rows to fit on, :func:`fit_centres` fits PCA and
K-Means on them, and :func:`nearest_prototype` assigns a batch; :class:`FeatureTap` reads a batch's
features. :func:`fit_prototypes` is the same on features already in memory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from torch import nn

from ..adapters import resolve_layer
from .config import I2XConfig
from .distributed import Ranks, available_cores
from .probe import ProbeSet


MAX_K = int(np.iinfo(np.int16).max) + 1  # assignments are stored as int16 (0..K-1)


@dataclass(frozen=True)
class Prototypes:
    """K prototype centres (in PCA space) and the per-position assignment of every probe sample."""

    pca: PCA
    centers: np.ndarray  # (K, p)
    assignments: np.ndarray  # (N, h, w) int16, values in [0, K)

    @property
    def k(self) -> int:
        return len(self.centers)

    @property
    def map_size(self) -> tuple[int, int]:
        return tuple(self.assignments.shape[1:])  # type: ignore[return-value]

    def presence(self) -> np.ndarray:
        """(N, K) number of positions of sample i assigned to prototype k (0 = absent)."""
        n = len(self.assignments)
        flat = self.assignments.reshape(n, -1).astype(np.int64)
        counts = np.zeros((n, self.k), dtype=np.int32)
        np.add.at(counts, (np.repeat(np.arange(n), flat.shape[1]), flat.ravel()), 1)
        return counts

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Assign new feature maps ``(N, h, w, d)`` to the nearest prototype: ``(N, h, w)``."""
        return nearest_prototype(self.pca, self.centers, features)


def _nearest(rows: np.ndarray, centers: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.int64)
    c2 = (centers**2).sum(1)
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        out[start : start + chunk] = (c2[None] - 2 * block @ centers.T).argmin(1)
    return out


class FeatureTap:
    """Reads ``layer``'s output for a batch, channels last: ``tap(x) -> (b, h, w, d)`` float32 on the CPU.

    A context manager: the forward hook lives inside the ``with`` block, and the model's training flag
    is restored on exit.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, device: str | torch.device | None = None):
        self.model = model
        self.module, self.name = resolve_layer(model, layer)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self._captured: list[torch.Tensor] = []

    def __enter__(self) -> "FeatureTap":
        self._handle = self.module.register_forward_hook(lambda _m, _i, out: self._captured.append(out.detach()))
        self._was_training = self.model.training
        self.model.eval()
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self.model.train(self._was_training)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        self._captured.clear()
        self.model(images.to(self.device))
        out = self._captured[0]
        if out.ndim != 4:
            raise ValueError(f"Layer {self.name!r} gives a {out.ndim}-D output {tuple(out.shape)}; I2X needs a "
                             "spatial (N, d, h, w) map. Choose a convolutional layer.")
        if out.shape[2] * out.shape[3] == 1:
            raise ValueError(f"Layer {self.name!r} has a 1×1 map: prototypes need spatial positions. "
                             "Choose an earlier convolutional layer.")
        return out.permute(0, 2, 3, 1).float().cpu().numpy()


def extract_features(model: nn.Module, layer: str | nn.Module, images: torch.Tensor, batch_size: int = 256,
                     device: str | torch.device | None = None) -> np.ndarray:
    """Output of ``layer`` for every image, channels last: ``(N, h, w, d)`` float32 on the CPU (all in memory)."""
    with FeatureTap(model, layer, device) as tap:
        return np.concatenate([tap(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


def fit_sample(n: int, positions: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Which feature rows (``sample * positions + position``) PCA and K-Means are fitted on.

    All ``n * positions`` rows when there are at most ``max_rows``; otherwise ``max_rows`` of them drawn
    at random without replacement (seeded), in the order drawn. The rows can then be read batch by batch.
    """
    total = n * positions
    if total <= max_rows:
        return np.arange(total)
    return np.random.default_rng(seed).choice(total, max_rows, replace=False)


def match_prototypes(reference: np.ndarray, other: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Match one partition's prototypes to another's by the cells they share (Hungarian assignment on the overlap).

    ``reference`` and ``other`` are two assignments of the same cells (any shape). Returns ``mapping[j]`` = the
    reference's prototype matched to prototype j of ``other``, and the share of cells whose matched prototypes
    agree (1.0: the same partition).
    """
    overlap = np.zeros((k, k), dtype=np.int64)
    np.add.at(overlap, (other.reshape(-1).astype(np.int64), reference.reshape(-1).astype(np.int64)), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = np.empty(k, dtype=np.int64)
    mapping[rows] = cols
    return mapping, float(overlap[rows, cols].sum() / max(overlap.sum(), 1))


def fit_centres(rows: np.ndarray, k: int, pca_components: int = 32, minibatch_rows: int = 200_000,
                seed: int = 0, inits: int = 3) -> tuple[PCA, np.ndarray]:
    """PCA (min(d, ``pca_components``) components) → K-Means with K centres on ``rows`` ``(m, d)``: ``(pca, (K, p))``.

    Full-batch (Lloyd) K-Means, best of ``inits`` (least inertia), up to ``minibatch_rows`` rows: on the default
    run two seeds' partitions agree on 85 % of the cells, against 69 % for MiniBatchKMeans, and the claims follow
    (bench/results/stability.md). Each fit runs on one BLAS and one OpenMP thread: scikit-learn's K-Means adds
    its threads' partial sums in the order the threads finish, so with more threads the centres (and, through
    near-ties, the partition) change from run to run and with the thread count. The initialisations (seeds
    drawn from ``seed``) are independent, so they run side by side on the available cores instead.
    """
    with threadpool_limits(limits=1):
        pca = PCA(n_components=min(rows.shape[1], pca_components, len(rows)), random_state=seed).fit(rows)
        reduced = pca.transform(rows)
        if len(reduced) > minibatch_rows:
            km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=inits, batch_size=4096).fit(reduced)
            return pca, km.cluster_centers_.astype(np.float64)
        seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(inits)]
        with ThreadPoolExecutor(max(1, min(inits, available_cores()))) as pool:
            fits = list(pool.map(lambda s: _one_thread_kmeans(reduced, k, s), seeds))
    best = min(range(inits), key=lambda i: (fits[i].inertia_, i))
    return pca, fits[best].cluster_centers_.astype(np.float64)


def _one_thread_kmeans(reduced: np.ndarray, k: int, seed: int) -> KMeans:
    """One Lloyd fit on one OpenMP thread: OpenMP's thread count is a setting of each calling thread, so a
    worker thread has to limit its own (the BLAS limit of the caller holds for the whole process)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return KMeans(n_clusters=k, random_state=seed, n_init=1).fit(reduced)


def nearest_prototype(pca: PCA, centers: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The nearest centre of every position of ``features`` ``(b, h, w, d)``: ``(b, h, w)`` int16."""
    b, h, w, d = features.shape
    return _nearest(pca.transform(features.reshape(-1, d)), centers).reshape(b, h, w).astype(np.int16)


def check_k(k: int, n: int, h: int, w: int) -> None:
    """K-Means needs at least K feature positions, and int16 assignments can number at most ``MAX_K``."""
    if k > MAX_K:
        raise ValueError(f"K={k} prototypes is more than the {MAX_K} that int16 assignments can number; lower K.")
    if k > n * h * w:
        raise ValueError(f"K={k} prototypes but only {n * h * w} feature positions ({n} samples × {h}×{w}). "
                         "Lower K or use more probe samples.")


def fit_prototypes(features: np.ndarray, k: int, pca_components: int = 32, max_rows: int = 200_000,
                   minibatch_rows: int = 200_000, seed: int = 0, inits: int = 3) -> Prototypes:
    """PCA → K-Means on a seeded sample of ≤ ``max_rows`` positions → nearest-centre assignment of every position.

    The in-memory form of what :meth:`i2x_plugin.I2X.explain` does batch by batch (same sample, same result).
    """
    n, h, w, d = features.shape
    check_k(k, n, h, w)
    rows = features.reshape(-1, d)
    pca, centers = fit_centres(rows[fit_sample(n, h * w, max_rows, seed)], k, pca_components, minibatch_rows, seed,
                               inits)
    return Prototypes(pca=pca, centers=centers, assignments=nearest_prototype(pca, centers, features))


def stream_prototypes(tap: FeatureTap, probe: ProbeSet, shard: range, shape: tuple[int, int, int],
                      config: I2XConfig, ranks: Ranks = Ranks(), progress: bool = False
                      ) -> tuple[PCA, np.ndarray, np.ndarray, np.ndarray]:
    """Step 2 read batch by batch: ``(pca, centres)`` fitted once, and the assignments and labels of ``shard``.

    Every rank reads the rows of the fit sample (:func:`fit_sample`, drawn over the whole probe set as
    one process draws it) that fall in its own shard; rank 0 fits on all of them in the sample's order
    and broadcasts the centres, so the result does not depend on the number of ranks and equals
    :func:`fit_prototypes` on the same features. When the sample holds every row (N·h·w ≤
    ``pca_max_rows``) the same pass also assigns; otherwise a second pass does. Memory: the sample's
    rows and one batch. ``shape`` is the layer's ``(h, w, d)``.
    """
    from tqdm.auto import tqdm

    h, w, d = shape
    hw, batch = h * w, config.batch_size
    chosen = fit_sample(len(probe), hw, config.pca_max_rows, config.seed)
    mine = np.sort(chosen[(chosen >= shard.start * hw) & (chosen < shard.stop * hw)])
    covers = len(mine) == len(shard) * hw
    samples = np.unique(mine // hw)
    rows = np.empty((len(mine), d), dtype=np.float32)
    labels = np.empty(len(shard), dtype=np.int64)
    assignments = np.empty((len(shard), h, w), dtype=np.int16)
    bar = tqdm(total=len(samples) + (0 if covers else len(shard)), desc="prototypes", unit="img",
               disable=not (progress and ranks.is_root))
    with bar:
        with ranks.checked("reading the prototype features"):
            done = 0
            for x, y in probe.batches(batch, samples):
                features = tap(x).reshape(-1, d)
                ids = samples[done : done + len(x)]
                lo, hi = np.searchsorted(mine, [ids[0] * hw, (ids[-1] + 1) * hw])
                rows[lo:hi] = features[np.searchsorted(ids, mine[lo:hi] // hw) * hw + mine[lo:hi] % hw]
                if covers:
                    labels[done : done + len(x)] = y.cpu().numpy()
                done += len(x)
                bar.update(len(x))
                del x, y, features  # before the next batch is read: one batch in memory, not two
        gathered = ranks.gather((mine, rows), "gathering the prototype features")
        with ranks.checked("fitting the prototypes"):
            fit = None
            if ranks.is_root:
                bar.set_postfix_str(f"PCA + K-Means (K={config.k})")
                got, all_rows = (np.concatenate([g[i] for g in gathered]) for i in (0, 1))  # type: ignore[union-attr]
                fit = fit_centres(all_rows[np.searchsorted(got, chosen)], config.k, config.pca_components,
                                  config.minibatch_kmeans_rows, config.seed, config.kmeans_inits)
        pca, centers = ranks.broadcast(fit, "receiving the prototypes")
        with ranks.checked("assigning the prototypes"):
            if covers:
                assignments[:] = nearest_prototype(pca, centers, rows.reshape(len(shard), h, w, d))
            else:
                bar.set_postfix_str("assigning")
                done = 0
                for x, y in probe.batches(batch, shard):  # (no enumerate: its tuple would keep a batch alive)
                    block = slice(done, done + len(x))
                    assignments[block] = nearest_prototype(pca, centers, tap(x))
                    labels[block] = y.cpu().numpy()
                    done += len(x)
                    bar.update(len(x))
                    del x, y
    return pca, centers, assignments, labels
