"""Step 2 of I2X: abstract prototypes from the final model's spatial features.

Features f(x_i) at the explained layer are stacked over probe samples and all h·w positions,
reduced by PCA, clustered by K-Means into K prototypes, and every position of every sample is
assigned to its nearest centre. The assignments stay fixed for every checkpoint of the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from torch import nn

from .adapters import resolve_layer


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
        n, h, w, d = features.shape
        reduced = self.pca.transform(features.reshape(-1, d))
        dist = ((reduced[:, None, :] - self.centers[None]) ** 2).sum(-1) if len(reduced) < 10_000 else None
        labels = dist.argmin(1) if dist is not None else _nearest(reduced, self.centers)
        return labels.reshape(n, h, w).astype(np.int16)


def _nearest(rows: np.ndarray, centers: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.int64)
    c2 = (centers**2).sum(1)
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        out[start : start + chunk] = (c2[None] - 2 * block @ centers.T).argmin(1)
    return out


@torch.no_grad()
def extract_features(model: nn.Module, layer: str | nn.Module, images: torch.Tensor, batch_size: int = 256,
                     device: str | torch.device | None = None) -> np.ndarray:
    """Output of ``layer`` for every image, channels last: ``(N, h, w, d)`` float32 on the CPU."""
    module, name = resolve_layer(model, layer)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            captured.clear()
            model(images[start : start + batch_size].to(device))
            out = captured[0]
            if out.ndim != 4:
                raise ValueError(f"Layer {name!r} gives a {out.ndim}-D output {tuple(out.shape)}; I2X needs a "
                                 "spatial (N, d, h, w) map. Choose a convolutional layer.")
            chunks.append(out.permute(0, 2, 3, 1).float().cpu().numpy())
    finally:
        handle.remove()
        model.train(was_training)
    features = np.concatenate(chunks)
    if features.shape[1] * features.shape[2] == 1:
        raise ValueError(f"Layer {name!r} has a 1×1 map: prototypes need spatial positions. "
                         "Choose an earlier convolutional layer.")
    return features


def fit_prototypes(features: np.ndarray, k: int, pca_components: int = 32, max_rows: int = 200_000,
                   minibatch_rows: int = 50_000, seed: int = 0) -> Prototypes:
    """PCA (min(d, ``pca_components``) components) → K-Means (K) → nearest-centre assignment of every position."""
    n, h, w, d = features.shape
    rows = features.reshape(-1, d)
    if k > MAX_K:
        raise ValueError(f"K={k} prototypes is more than the {MAX_K} that int16 assignments can number; lower K.")
    if k > len(rows):
        raise ValueError(f"K={k} prototypes but only {len(rows)} feature positions ({n} samples × {h}×{w}). "
                         "Lower K or use more probe samples.")
    rng = np.random.default_rng(seed)
    fit_rows = rows[rng.choice(len(rows), max_rows, replace=False)] if len(rows) > max_rows else rows
    pca = PCA(n_components=min(d, pca_components, len(fit_rows)), random_state=seed).fit(fit_rows)
    reduced_fit = pca.transform(fit_rows)
    if len(reduced_fit) > minibatch_rows:
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(reduced_fit)
    else:
        km = KMeans(n_clusters=k, random_state=seed, n_init=3).fit(reduced_fit)
    centers = km.cluster_centers_.astype(np.float64)
    labels = _nearest(pca.transform(rows), centers)
    return Prototypes(pca=pca, centers=centers, assignments=labels.reshape(n, h, w).astype(np.int16))
