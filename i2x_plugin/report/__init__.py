"""The HTML report of an I2X run: what a person looks at to see why the model looks where it looks.

>>> from i2x_plugin.report import exemplar_saliency, write_report
>>> saliency = exemplar_saliency(i2x.adapter, probe, explanation)      # final checkpoint loaded
>>> write_report(explanation, probe, "out/report", saliency=saliency)

The probe images are read back by index (only the exemplars' and misclassified samples'), so the
probe data can be a tensor, an :class:`~i2x_plugin.training.data.ImageDataset` or any ``Dataset`` of
``(image, label)`` items that never fits in memory.

One self-contained ``index.html`` (every figure embedded as a base64 PNG, so it opens offline and
can be mailed as one file) plus the same PNGs beside it. Sections: accuracy and confusion per
checkpoint; β per class over steps; the learning order of class pairs; uncertain prototypes with
their β trajectories; and a gallery with, for every prototype, the image regions it covers in its
highest-intensity samples, under the final checkpoint's saliency. Figures use matplotlib's
object API (no pyplot, no global backend change); the gallery's exemplar strips are composed as
pixels and written with Pillow, which is most of what makes the report fast.
"""

from .checks import stability_section
from .exemplars import Images, exemplar_saliency, exemplar_strip, save_sample_images
from .page import add_report_section, describe_prototype, write_report

__all__ = ["Images", "add_report_section", "describe_prototype", "exemplar_saliency", "exemplar_strip",
           "save_sample_images", "stability_section", "write_report"]
