"""Shape images with a *planted* answer, to check that I2X recovers structure we know is there.

Each class is a set of shapes drawn at random, non-overlapping cells of a 2×2 grid on a noisy
canvas. By default classes 0 and 1 share the bright ``square`` (so they stay confused until the
model learns the faint ``plus`` vs ``cross`` that tells them apart), while classes 2 and 3 have
shapes of their own. ``masks`` records which shape covers which pixel, so the expected answer is
derived from how the data was made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import ImageDataset

def _texture(kind: str, n: int = 8) -> np.ndarray:
    r, c = np.mgrid[0:n, 0:n]
    return {
        "solid": np.ones((n, n)),
        "hstripes": (r % 2 == 0).astype(float),
        "vstripes": (c % 2 == 0).astype(float),
        "checker": ((r // 2 + c // 2) % 2 == 0).astype(float),
        "diagonal": ((r + c) % 4 < 2).astype(float),
        "dots": ((r % 3 == 1) & (c % 3 == 1)).astype(float),
        "frame": ((r == 0) | (c == 0) | (r == n - 1) | (c == n - 1)).astype(float),
    }[kind]


SHAPES: dict[str, np.ndarray] = {name: _texture(name) for name in ("solid", "hstripes", "vstripes", "checker", "diagonal", "dots", "frame")}
DEFAULT_CLASSES: tuple[tuple[str, ...], ...] = (("solid", "hstripes"), ("solid", "vstripes"), ("checker", "dots"), ("diagonal", "frame"))
DEFAULT_BRIGHTNESS = {"solid": 1.0, "hstripes": 0.6, "vstripes": 0.6, "checker": 1.0, "diagonal": 1.0, "dots": 1.0, "frame": 1.0}


@dataclass(frozen=True)
class PlantedShapes:
    """The images and, per sample, an ``(H, W)`` map of which shape (index into ``shape_names``, −1 none) is where."""

    data: ImageDataset
    masks: np.ndarray  # (N, H, W) int8
    shape_names: tuple[str, ...]
    class_shapes: tuple[tuple[str, ...], ...]


def make_planted_shapes(n_per_class: int = 150, size: int = 16, noise: float = 0.15, seed: int = 0,
                        class_shapes: tuple[tuple[str, ...], ...] = DEFAULT_CLASSES,
                        brightness: dict[str, float] | None = None, scale: int = 1) -> PlantedShapes:
    """Draw ``n_per_class`` images per class; each shape (enlarged ``scale`` times) goes into its own cell of a
    2×2 grid with jitter."""
    rng = np.random.default_rng(seed)
    brightness = {**DEFAULT_BRIGHTNESS, **(brightness or {})}
    names = tuple(SHAPES)
    cell = size // 2
    images, masks, labels = [], [], []
    for label, shapes in enumerate(class_shapes):
        for _ in range(n_per_class):
            img = rng.normal(0.0, noise, (size, size)).clip(0, 1).astype(np.float32)
            mask = np.full((size, size), -1, dtype=np.int8)
            for shape, slot in zip(shapes, rng.permutation(4)[: len(shapes)]):
                pattern = np.kron(SHAPES[shape], np.ones((scale, scale)))
                r = (slot // 2) * cell + rng.integers(0, cell - pattern.shape[0] + 1)
                c = (slot % 2) * cell + rng.integers(0, cell - pattern.shape[1] + 1)
                region = (slice(r, r + pattern.shape[0]), slice(c, c + pattern.shape[1]))
                img[region] = np.maximum(img[region], pattern * brightness[shape])
                mask[region] = names.index(shape)
            images.append(img)
            masks.append(mask)
            labels.append(label)
    order = rng.permutation(len(labels))
    data = ImageDataset(
        "planted-shapes",
        torch.from_numpy(np.stack(images)[order]).unsqueeze(1),
        torch.tensor(labels)[order],
        tuple("+".join(s) for s in class_shapes),
    )
    return PlantedShapes(data, np.stack(masks)[order], names, class_shapes)


# --- the planted answer, derived from the masks --------------------------------------------------------


def prototype_shapes(shapes: PlantedShapes, assignments: np.ndarray, labels: np.ndarray, map_size: tuple[int, int],
                     num_classes: int, k: int, receptive_field: int = 9) -> dict[tuple[int, int], str]:
    """What each prototype covers inside the samples of each class: ``{(class, prototype): shape}``.

    A feature cell sees ``receptive_field`` pixels around it, so a cell is labelled by the shape with the
    most pixels in that window ("bg" when none); a prototype takes its cells' majority label, or "mix"
    when no label has a majority.
    """
    names = shapes.shape_names
    one_hot = torch.from_numpy(np.stack([shapes.masks == s for s in range(len(names))], 1).astype(np.float32))
    stride = shapes.masks.shape[1] // map_size[0]
    window = torch.nn.functional.avg_pool2d(one_hot, receptive_field, stride, receptive_field // 2,
                                            count_include_pad=False).numpy()
    cell_shape = np.where(window.max(1) > 0, window.argmax(1), -1)
    covers = {}
    for c in range(num_classes):
        in_class = labels == c
        for p in range(k):
            cells = cell_shape[in_class][assignments[in_class] == p]
            if len(cells) == 0:
                continue
            values, counts = np.unique(cells, return_counts=True)
            top = counts.argmax()
            majority = "bg" if values[top] < 0 else names[values[top]]
            covers[c, p] = majority if counts[top] > counts.sum() / 2 else "mix"
    return covers


def score_planted_claims(shapes: PlantedShapes, explanation) -> dict[str, dict[str, float | int]]:
    """Each claim of ``explanation`` judged against the planted answer: right, wrong, or not decided by the masks.

    What a prototype covers comes from the masks (:func:`prototype_shapes`). A *driver* of c is right when it
    covers one of c's shapes and wrong when it covers a shape c does not have. A *separator* favouring f over
    o is right when it covers a shape of f that o lacks, wrong when it covers a shape of o that f lacks. An
    *uncertain* prototype is right when its pair shares a shape and it covers that shape, wrong when the pair
    shares nothing. Background, mixed cells and shared shapes (for separators) decide nothing.
    Precision = right / (right + wrong). Recall: drivers, the (class, own shape) pairs with a right driver;
    separators, the (pair, favoured class) with a distinguishing shape that have a right separator;
    uncertain, the sharing pairs that have a right one.
    """
    e = explanation
    covers = prototype_shapes(shapes, e.assignments, e.labels, tuple(e.map_size), e.num_classes, e.k)
    own = [set(s) for s in shapes.class_shapes]
    everything = set(shapes.shape_names)
    sharing = {(a, b) for a in range(len(own)) for b in range(a + 1, len(own)) if own[a] & own[b]}

    def summary(verdicts: list[bool | None], found: set, wanted: set) -> dict[str, float | int]:
        right, wrong = verdicts.count(True), verdicts.count(False)
        return {"claims": len(verdicts), "right": right, "wrong": wrong, "undecided": len(verdicts) - right - wrong,
                "precision": right / (right + wrong) if right + wrong else float("nan"),
                "recall": len(found & wanted) / len(wanted) if wanted else float("nan")}

    def driver(d) -> bool | None:
        shape = covers.get((d.cls, d.prototype))
        return True if shape in own[d.cls] else False if shape in everything else None

    verdicts = [driver(d) for d in e.drivers]
    found = {(d.cls, covers.get((d.cls, d.prototype))) for d, v in zip(e.drivers, verdicts) if v}
    out = {"drivers": summary(verdicts, found, {(c, s) for c in range(len(own)) for s in own[c]})}

    def separator(s) -> bool | None:
        other = s.b if s.favours == s.a else s.a
        shape = covers.get((s.favours, s.prototype)) or covers.get((other, s.prototype))
        return True if shape in own[s.favours] - own[other] else False if shape in own[other] - own[s.favours] else None

    verdicts = [separator(s) for s in e.separators]
    found = {(s.a, s.b, s.favours) for s, v in zip(e.separators, verdicts) if v}
    wanted = {(a, b, f) for a in range(len(own)) for b in range(a + 1, len(own)) for f, o in ((a, b), (b, a))
              if own[f] - own[o]}
    out["separators"] = summary(verdicts, found, wanted)

    def uncertain(u) -> bool | None:
        if (u.a, u.b) not in sharing:
            return False
        return True if covers.get((u.a, u.prototype)) in own[u.a] & own[u.b] else None

    verdicts = [uncertain(u) for u in e.uncertain]
    out["uncertain"] = summary(verdicts, {(u.a, u.b) for u, v in zip(e.uncertain, verdicts) if v}, sharing)
    return out


def train_planted_model(shapes: PlantedShapes, directory, seed: int = 0, epochs: int = 6, every: int = 10,
                        lr: float = 3e-3):
    """A SmallCNN trained on planted shapes with a checkpoint before training and every ``every`` steps
    (the planted pair separates within an epoch, so epoch checkpoints would miss it). Seeded and on one
    thread (:func:`~.training.fixed_threads`), so the weights do not depend on the machine's thread count."""
    from torch.utils.data import DataLoader, TensorDataset

    from .checkpoints import CheckpointRecorder
    from .models import SmallCNN
    from .loop import fixed_threads, seeded

    with seeded(seed), fixed_threads(1):
        model = SmallCNN(1, len(shapes.class_shapes), pools=1, width=16)
        recorder = CheckpointRecorder(directory)
        loader = DataLoader(TensorDataset(shapes.data.images, shapes.data.labels), batch_size=32, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        recorder.save(model, epoch=0, step=0)
        step = 0
        for epoch in range(epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                step += 1
                if step % every == 0:
                    recorder.save(model, epoch=epoch + 1, step=step, train_loss=loss.item())
    return model.eval(), recorder


def serially_correlated_noise(steps: int, per_class: int, k: int, classes: int, rho_x: float, rho_y: float,
                              seed: int, difference_x: bool = False,
                              compete: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ΔP ``(steps, N, k)`` (standardised per step) and ΔŶ ``(steps, N, classes)`` with *no* link between them
    but with serial dependence inside each sample, as a training sweep makes it: the honest answer is no claim.

    Each sample's value at step t is √ρ·u (one draw for all steps) + √(1−ρ)·e_t, so any two steps correlate
    by ρ (``rho_x`` for ΔP, ``rho_y`` for ΔŶ); with ``difference_x`` ΔP is instead the difference of i.i.d.
    levels (neighbouring steps correlate by −0.5, as consecutive checkpoint differences do); with ``compete``
    each sample's ΔŶ is centred over the classes (confidences compete: what one class gains the others lose,
    so the columns of a pair fit move against each other). Returns
    ``(x, y, labels)`` with labels ``per_class`` samples of each class.
    """
    rng = np.random.default_rng(seed)
    n = per_class * classes
    if difference_x:
        x = np.diff(rng.normal(size=(steps + 1, n, k)), axis=0)
    else:
        x = np.sqrt(rho_x) * rng.normal(size=(1, n, k)) + np.sqrt(1 - rho_x) * rng.normal(size=(steps, n, k))
    y = (np.sqrt(rho_y) * rng.gamma(2.0, size=(1, n, classes))
         + np.sqrt(1 - rho_y) * rng.gamma(2.0, size=(steps, n, classes)))
    if compete:
        y = y - y.mean(2, keepdims=True)
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    return x, y, np.repeat(np.arange(classes), per_class)
