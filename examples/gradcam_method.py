"""I2X with a pytorch-grad-cam method (GradCAM++) instead of Captum.

Training uses the library's ``train_with_checkpoints`` (Adam, a checkpoint before training and after each
epoch; ``plain_pytorch_captum.py`` shows the same with your own loop); what changes is the attribution: any
pytorch-grad-cam ``BaseCAM`` class at one layer (GradCAM, GradCAMPlusPlus, XGradCAM, EigenCAM, ...)
goes into ``GradCamAdapter``, or by name: ``I2X(model, layer, adapter="gradcam", method="GradCAMPlusPlus")``.

    python examples/gradcam_method.py [OUT_DIR]        (I2X_EXAMPLE_SMALL=1: seconds, 8×8 digits)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
from pytorch_grad_cam import GradCAMPlusPlus
from torch import nn

from i2x_plugin import I2X, I2XConfig
from i2x_plugin.adapters import GradCamAdapter
from i2x_plugin.training.data import load_digits_8x8, load_mnist_5k
from i2x_plugin.training.loop import train_with_checkpoints

SMALL = os.environ.get("I2X_EXAMPLE_SMALL") == "1"
EPOCHS = 2 if SMALL else 6
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="i2x-example-"))

torch.manual_seed(0)
data = load_digits_8x8() if SMALL else load_mnist_5k()
order = torch.randperm(len(data))
train = data.subset(order[: int(0.8 * len(data))], "train")
model = nn.Sequential()
model.add_module("features", nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), *[nn.MaxPool2d(2) for _ in range(1 if SMALL else 2)],
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()))
model.add_module("classifier", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)))
recorder = train_with_checkpoints(model, train, out / "checkpoints", epochs=EPOCHS, lr=1e-2 if SMALL else 3e-3)
model.eval()

adapter = GradCamAdapter(model, "features", GradCAMPlusPlus)
explanation = I2X(model, "features", adapter=adapter, config=I2XConfig(k=12 if SMALL else 32)).explain(
    recorder.directory, train, class_names=data.class_names, progress=not SMALL)
explanation.save(out / "explanation")

names = explanation.class_names
print(f"method: {explanation.method} at layer {explanation.layer}")
print(f"accuracy per checkpoint: {[round(c.accuracy, 3) for c in explanation.checkpoints]}")
print("learning order:", ", ".join(f"{names[a]}↔{names[b]}" for a, b in explanation.learning_order[:6]) or "none")
shared = [s for s in explanation.shared if s.kind == "shared"]
print(f"{len(shared)} prototypes shared by a whole class; {len(explanation.shared) - len(shared)} specialised")
for u in explanation.uncertain[:3]:
    print(f"P{u.prototype} is uncertain between {names[u.a]} and {names[u.b]} (flips at steps {u.flip_steps})")
print(f"explanation saved to {out / 'explanation'}")
