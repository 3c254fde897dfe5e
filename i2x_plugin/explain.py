"""The I2X facade: ``I2X(model, layer, adapter, config).explain(checkpoints, dataset)``.

It ties the steps together: checkpoints → prototypes of the final model → the streaming sweep over
checkpoints → deltas, groups and ridge β → the :class:`StructuredExplanation`.

The probe data is read batch by batch (:mod:`i2x_plugin.probe`): memory holds the O(T·N·K + T·N·C)
arrays, the (N, h, w) assignments, the prototype fit's sample of feature rows and one batch of images.
Under ``torchrun`` (an initialised default process group) the work is sharded over the ranks by
probe sample (:mod:`i2x_plugin.distributed`); rank 0 returns the explanation, the other ranks ``None``.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .adapters import resolve_layer
from .checkpoints import CheckpointInfo, CheckpointsType, LoadFunc, default_load_func, resolve_checkpoints
from .config import I2XConfig
from .distributed import Ranks, file_digest
from .probe import ProbeLike, ProbeSet
from .progress import Trajectory, learning_groups, ridge_betas, sweep
from .prototypes import FeatureTap, Prototypes, check_k, fit_centres, fit_sample, nearest_prototype
from .structure import CheckpointSummary, StructuredExplanation, build_structure


class I2X:
    """Structured explanations of why an image classifier looks where it looks, and how that formed in training.

    Args:
        model: the classifier; checkpoints are loaded into this one instance in turn.
        layer: the spatial feature layer f (module or dotted name) where prototypes and GradCAM live.
        adapter: a saliency adapter built on ``(model, layer)``, or ``"captum"`` / ``"gradcam"``
            (default: Captum ``LayerGradCam``).
        config: :class:`I2XConfig`; defaults follow the paper where it is explicit.
        device: where the sweep runs (default: the model's device).
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, adapter: Any = "captum",
                 config: I2XConfig | None = None, method: str | None = None,
                 device: str | torch.device | None = None):
        self.config = config or I2XConfig()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.layer, self.layer_name = resolve_layer(model, layer)
        if isinstance(adapter, str):
            from .adapters import build_adapter

            adapter = build_adapter(adapter, model, self.layer_name, method)
        self.adapter = adapter
        self.method_name = getattr(adapter, "method_name", type(adapter).__name__)
        self.timings: dict[str, float] = {}  # seconds per stage of the last explain()

    @contextmanager
    def _stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start

    def fit_prototypes(self, data: ProbeLike | torch.Tensor, progress: bool = False) -> Prototypes:
        """Step 2 on the model as it is now (load the final checkpoint first).

        ``data``: probe data (anything :meth:`explain` takes; read batch by batch), or images ``(N, C, H, W)``
        already in memory.
        """
        cfg = self.config
        if isinstance(data, torch.Tensor):
            from .prototypes import extract_features, fit_prototypes

            features = extract_features(self.model, self.layer, data, cfg.batch_size, self.device)
            return fit_prototypes(features, cfg.k, cfg.pca_components, cfg.pca_max_rows, cfg.minibatch_kmeans_rows,
                                  cfg.seed)
        probe = ProbeSet.from_data(data)
        shape = self._first_batch(probe)[1]
        check_k(cfg.k, len(probe), *shape[:2])
        pca, centers, assignments, _ = self._prototypes(probe, range(len(probe)), shape, Ranks(), progress)
        return Prototypes(pca, centers, assignments)

    def explain(
        self,
        checkpoints: CheckpointsType,
        dataset: ProbeLike,
        checkpoints_load_func: LoadFunc = default_load_func,
        class_names: Iterable[str] | None = None,
        sample_ids: np.ndarray | None = None,
        run_id: str | None = None,
        model_name: str | None = None,
        progress: bool = False,
    ) -> StructuredExplanation | None:
        """Run steps 2–8 over ``checkpoints`` (directory, list or iterable of paths) on the probe ``dataset``.

        ``dataset``: an :class:`~i2x_plugin.data.ImageDataset`, ``(images, labels)`` tensors, a map-style
        ``Dataset`` of ``(image, label)`` items or a ``DataLoader`` over one (see :mod:`i2x_plugin.probe`).
        Under ``torchrun`` call it on every rank: rank 0 returns the explanation, the others ``None``.
        """
        cfg = self.config
        self.timings = {}
        ranks = Ranks.current()
        with ranks.checked("checking the probe data and checkpoints"):
            probe = ProbeSet.from_data(dataset, class_names)
            infos = resolve_checkpoints(checkpoints)
            facts = self._inspect(probe, infos, checkpoints_load_func, ranks.distributed)
        ranks.agree(facts)
        n, num_classes, shape = len(probe), facts["classes"], facts["feature map"]
        check_k(cfg.k, n, *shape[:2])
        if sample_ids is not None and len(sample_ids) != n:
            raise ValueError(f"sample_ids has {len(sample_ids)} entries for {n} probe samples; give one id per sample.")
        shard = ranks.shard(n, cfg.batch_size)

        with self._stage("prototypes"):
            checkpoints_load_func(self.model, infos[-1].path)
            pca, centers, assignments, labels = self._prototypes(probe, shard, shape, ranks, progress)
        self._check_labels(ranks.all_gather(_label_counts(labels, num_classes), "checking the labels"),
                           num_classes, probe.class_names)
        with self._stage("sweep"), ranks.checked("running the sweep"):
            trajectory = sweep(self.model, self.adapter.attribute, infos, checkpoints_load_func,
                               probe.batches(cfg.batch_size, shard), assignments, labels, cfg.k, num_classes,
                               cfg.target, cfg.normalization, self.device, progress and ranks.is_root,
                               on_checkpoint=lambda _: ranks.sync("running the sweep"))
        parts = ranks.gather((assignments, labels, trajectory), "gathering the sweep on rank 0")
        if parts is None:
            return None
        if len(parts) > 1:  # rank 0 of several: the shards in rank order are the probe set in order
            assignments, labels = (np.concatenate([part[i] for part in parts]) for i in (0, 1))
            trajectory = Trajectory.concatenate([part[2] for part in parts])
        del parts
        return self._structure(probe, infos, trajectory, Prototypes(pca, centers, assignments), labels, num_classes,
                               sample_ids, run_id, model_name)

    def _structure(self, probe: ProbeSet, infos: list[CheckpointInfo], trajectory: Trajectory, prototypes: Prototypes,
                   labels: np.ndarray, num_classes: int, sample_ids: np.ndarray | None, run_id: str | None,
                   model_name: str | None) -> StructuredExplanation:
        """Steps 5–8 on the gathered sweep (rank 0 only)."""
        cfg = self.config
        presence = prototypes.presence()
        delta_p, delta_conf = trajectory.deltas()
        with self._stage("groups"):
            groups = learning_groups(delta_conf, labels, num_classes, cfg.min_cluster_size, cfg.min_cluster_fraction)
        with self._stage("ridge"):
            betas = ridge_betas(delta_p, delta_conf, labels, groups, num_classes, cfg.ridge_alpha)
        with self._stage("structure"):
            structure = build_structure(trajectory, betas, groups, labels, prototypes.assignments, presence, cfg)
        accuracy = trajectory.accuracy
        names = probe.class_names or ()
        return StructuredExplanation(
            run_id=run_id or uuid.uuid4().hex[:12],
            config=cfg,
            model_name=model_name or type(self.model).__name__,
            layer=self.layer_name,
            method=self.method_name,
            dataset=probe.name,
            class_names=list(names[:num_classes]) if len(names) >= num_classes else [str(c) for c in range(num_classes)],
            map_size=list(prototypes.map_size),
            checkpoints=[CheckpointSummary(i.index, i.name, str(i.path), i.epoch, i.step, i.train_loss,
                                           float(accuracy[i.index])) for i in infos],
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            sample_ids=np.arange(len(labels)) if sample_ids is None else np.asarray(sample_ids),
            labels=labels,
            assignments=prototypes.assignments,
            presence=presence,
            intensities=trajectory.intensities,
            confidences=trajectory.confidences,
            predictions=trajectory.predictions,
            confusion=trajectory.confusion,
            group_labels=groups,
            prototypes=prototypes,
            **structure,
        )

    def _prototypes(self, probe: ProbeSet, shard: range, shape: tuple[int, int, int], ranks: Ranks,
                    progress: bool) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        """Step 2, batch by batch: ``(pca, centres)`` fitted once (on rank 0) and this shard's assignments and labels.

        Every rank reads the fit sample's rows (:func:`~i2x_plugin.prototypes.fit_sample`) inside its own
        shard; rank 0 fits on all of them, in the sample's order, so the fit does not depend on the number
        of ranks. When the sample holds every row (N·h·w ≤ ``pca_max_rows``) the same pass also assigns.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        h, w, d = shape
        hw, batch = h * w, cfg.batch_size
        chosen = fit_sample(len(probe), hw, cfg.pca_max_rows, cfg.seed)
        mine = np.sort(chosen[(chosen >= shard.start * hw) & (chosen < shard.stop * hw)])
        covers = len(mine) == len(shard) * hw
        samples = np.unique(mine // hw)
        rows = np.empty((len(mine), d), dtype=np.float32)
        labels = np.empty(len(shard), dtype=np.int64)
        assignments = np.empty((len(shard), h, w), dtype=np.int16)
        bar = tqdm(total=len(samples) + (0 if covers else len(shard)), desc="prototypes", unit="img",
                   disable=not (progress and ranks.is_root))
        with bar, FeatureTap(self.model, self.layer, self.device) as tap:
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
                    del x, y, features  # before the next batch is read
            gathered = ranks.gather((mine, rows), "gathering the prototype features")
            with ranks.checked("fitting the prototypes"):
                fit = None
                if ranks.is_root:
                    bar.set_postfix_str(f"PCA + K-Means (K={cfg.k})")
                    got, all_rows = (np.concatenate([g[i] for g in gathered]) for i in (0, 1))  # type: ignore[union-attr]
                    fit = fit_centres(all_rows[np.searchsorted(got, chosen)], cfg.k, cfg.pca_components,
                                      cfg.minibatch_kmeans_rows, cfg.seed)
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

    @torch.no_grad()
    def _first_batch(self, probe: ProbeSet) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """The first probe samples (the first item checked) and the explained layer's map shape ``(h, w, d)``."""
        probe.check_first_item()
        x = probe.read(range(min(2, len(probe))))[0].to(self.device)
        with FeatureTap(self.model, self.layer, self.device) as tap:
            return x, tuple(tap(x).shape[1:])  # type: ignore[return-value]

    @torch.no_grad()
    def _inspect(self, probe: ProbeSet, infos: list[CheckpointInfo], load_func: LoadFunc,
                 digests: bool) -> dict[str, Any]:
        """Check the first item and the first checkpoint (architecture mismatches early); what the ranks must agree on."""
        load_func(self.model, infos[0].path)
        x, shape = self._first_batch(probe)
        was_training = self.model.training
        self.model.eval()
        num_classes = int(self.model(x).shape[1])
        self.model.train(was_training)
        return {"probe samples": len(probe), "image shape": tuple(x.shape[1:]), "classes": num_classes,
                "feature map": shape, "layer": self.layer_name, "settings": self.config.to_json(),
                "checkpoints": [file_digest(i.path) if digests else i.name for i in infos]}

    @staticmethod
    def _check_labels(counts: list[tuple[int | None, np.ndarray]], num_classes: int,
                      class_names: tuple[str, ...] | None) -> None:
        """Every label is a class of the model and every class has probe samples (counts from every rank)."""
        bad = [first for first, _ in counts if first is not None]
        if bad:
            raise ValueError(f"Label {bad[0]} is outside the model's {num_classes} classes (0..{num_classes - 1}). "
                             "Fix the probe labels or the model's output size.")
        present = np.sum([c for _, c in counts], axis=0)
        missing = np.flatnonzero(present == 0).tolist()
        if missing:
            names = [class_names[c] if class_names and c < len(class_names) else str(c) for c in missing]
            raise ValueError(f"Classes {names} have no samples in the probe set; every class needs probe samples "
                             "(use a stratified probe set).")


def _label_counts(labels: np.ndarray, num_classes: int) -> tuple[int | None, np.ndarray]:
    """The first label outside ``0..num_classes-1`` (or None) and the per-class counts of the others."""
    outside = (labels < 0) | (labels >= num_classes)
    first = int(labels[outside][0]) if outside.any() else None
    return first, np.bincount(labels[~outside], minlength=num_classes)
