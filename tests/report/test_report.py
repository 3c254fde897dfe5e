"""The HTML report: self-contained, every image decodes in a real browser, the screenshot is not blank,
and the exemplar overlays are the final checkpoint's real GradCAM."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam

from headless_chromium import CHROMIUM, loaded_images, non_background_fraction, screenshot
from i2x_plugin.adapters import normalize
from i2x_plugin.training.checkpoints import default_load_func
from i2x_plugin.method.pvalues import format_p
from i2x_plugin.report import (
    add_report_section,
    describe_prototype,
    exemplar_saliency,
    save_sample_images,
    write_report,
)
from i2x_plugin.report.exemplars import _OUTLINE, _crop_bounds, _exemplar_tile


@pytest.fixture(scope="module")
def report(digits_run, tmp_path_factory):
    """The report of the shared digits run, with the final checkpoint's saliency overlays."""
    explanation = digits_run.explanation
    default_load_func(digits_run.model, explanation.checkpoints[-1].path)
    saliency = exemplar_saliency(digits_run.i2x().adapter, digits_run.probe, explanation)
    test_accuracy = [max(0.0, c.accuracy - 0.01) for c in explanation.checkpoints]
    path = write_report(explanation, digits_run.probe.images, tmp_path_factory.mktemp("report"),
                        saliency=saliency, test_accuracy=test_accuracy,
                        extra_sections=[("Fine-tuning", "<p id='extra'>table here</p>")])
    return path, saliency


def test_report_is_one_self_contained_file(report, digits_run):
    path, _ = report
    page = path.read_text(encoding="utf-8")
    explanation = digits_run.explanation
    sources = re.findall(r'<img src="([^"]+)"', page)
    with_exemplars = len({e.prototype for e in explanation.exemplars})
    shown_uncertain = min(len(explanation.uncertain), 8)
    # accuracy, 2 confusion figures, β heatmaps, learning order (if any pair was confused), the drivers' deletion
    # tests (if any), one β plot and one exemplar strip per shown uncertain prototype, one strip per prototype.
    tested = any(r.kind == "drivers" for r in explanation.faithfulness_results)
    expected = 4 + bool(explanation.learning_order) + tested + 2 * shown_uncertain + with_exemplars
    assert len(sources) == expected
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report must not load anything from the network"
    assert "<p id='extra'>table here</p>" in page
    for k in range(explanation.k):
        assert f'id="p{k}"' in page  # a gallery card for every prototype
    names = {p.name for p in path.parent.glob("*.png")}
    assert {"accuracy.png", "beta_per_class.png", "confusion_final.png"} <= names


def test_exemplar_saliency_is_the_final_checkpoints_layergradcam(report, digits_run):
    """Cross-check against Captum itself: LayerGradCam → ReLU → per-image min–max → bilinear to 8×8."""
    _, saliency = report
    explanation = digits_run.explanation
    assert set(saliency) == {e.sample for e in explanation.exemplars}
    samples = sorted(saliency)[:16]
    model = digits_run.model
    default_load_func(model, explanation.checkpoints[-1].path)
    model.eval()
    x = digits_run.probe.images[samples]
    raw = LayerGradCam(model, model.block3).attribute(x, target=digits_run.probe.labels[samples],
                                                      relu_attributions=True)
    expected = LayerAttribution.interpolate(normalize(raw.detach(), "minmax"), (8, 8), "bilinear")
    got = np.stack([saliency[s] for s in samples])
    np.testing.assert_allclose(got, expected.squeeze(1).numpy(), atol=1e-5)
    assert got.min() >= 0 and got.max() <= 1


def test_crop_bounds_map_cells_to_pixels():
    # 7×7 map of a 28×28 image: one cell is 4×4 pixels.
    assert _crop_bounds([2, 3, 2, 3], (7, 7), (28, 28), pad=0)[:4] == (8, 12, 12, 16)
    assert _crop_bounds([2, 3, 2, 3], (7, 7), (28, 28), pad=1)[:4] == (4, 16, 8, 20)
    assert _crop_bounds([0, 0, 6, 6], (7, 7), (28, 28), pad=1)[:4] == (0, 28, 0, 28)  # clipped to the image
    assert _crop_bounds([1, 0, 1, 3], (4, 4), (8, 8), pad=0)[:4] == (2, 4, 0, 8)


def test_exemplar_tile_is_the_upscaled_crop_with_the_cells_outlined():
    image = np.arange(64, dtype=float).reshape(8, 8) / 63  # 8×8 pixels, 4×4 map: a cell is 2×2 pixels
    tile = _exemplar_tile(image, None, np.array([[1, 1]]), [1, 1, 1, 1], (4, 4))
    f = 112 // 6  # the box's cell with one cell of context: pixels 0..5, upscaled to fit 112
    assert tile.shape == (6 * f, 6 * f, 3)
    assert (tile[0, 0] == image[0, 0]).all() and (tile[3 * f, 5 * f] == image[3, 5]).all()
    for r, c in [(2 * f, 3 * f), (4 * f - 1, 3 * f), (3 * f, 2 * f), (3 * f, 4 * f - 1)]:  # cell (1, 1)'s border
        assert tuple(tile[r, c]) == _OUTLINE
    assert (tile[3 * f, 3 * f] == image[3, 3]).all()  # inside the cell: the image
    hot = _exemplar_tile(image, np.ones((8, 8)), np.zeros((0, 2), int), [1, 1, 1, 1], (4, 4))
    assert not np.allclose(hot[0, 0], image[0, 0])  # full saliency: the overlay shows


def test_prototype_facts_come_from_the_explanation(digits_run):
    explanation = digits_run.explanation
    driver = explanation.drivers[0]
    facts = " ".join(describe_prototype(explanation, driver.prototype))
    assert f"{explanation.class_names[driver.cls]} (β {driver.beta:+.3f}, {format_p(driver.q, 'q')}" in facts
    share = (explanation.presence[:, driver.prototype] > 0).mean()
    assert facts.startswith(f"in {100 * share:.0f}% of probe samples")


def test_report_needs_the_explained_probe_images(digits_run, tmp_path):
    with pytest.raises(ValueError, match="probe images"):
        write_report(digits_run.explanation, digits_run.probe.images[:10], tmp_path)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make browser)")
def test_report_renders_offline_in_chromium(report, tmp_path):
    path, _ = report
    images = loaded_images(path)
    assert images, "no <img> found by the browser"
    broken = [i for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, f"{len(broken)} of {len(images)} images did not decode: {broken[:3]}"
    shot = screenshot(path, tmp_path / "report.png")
    assert shot.shape[:2] == (3000, 1200)
    assert non_background_fraction(shot) > 0.2, "the screenshot is (nearly) blank"
    # The dark header band is drawn at the top: the page's own CSS applied.
    assert shot[:40, :, :].mean() < 0.3


def test_sample_images_are_written_and_referenced_by_uri(digits_run, tmp_path):
    from matplotlib.image import imread

    probe = digits_run.probe
    uris = save_sample_images(probe.images, [3, 1, 3], tmp_path, sample_ids=[100 + i for i in range(len(probe))])
    assert sorted(uris) == [1, 3] and uris[3] == (tmp_path / "sample-103.png").resolve().as_uri()
    image = imread(tmp_path / "sample-103.png")
    assert image.shape[:2] == (112, 112)  # 8×8 digits upscaled ×14, nearest neighbour
    expected = probe.images[3, 0].numpy()
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(image[::14, ::14, 0], expected, atol=1 / 255 + 1e-6)


def test_a_section_can_be_added_to_a_written_report_once(report, tmp_path):
    import shutil

    path = tmp_path / "index.html"
    shutil.copy(report[0], path)
    add_report_section(tmp_path, "Targeted fine-tuning", "<table><tr><td>curated→full</td></tr></table>")
    add_report_section(path, "Targeted fine-tuning", "<p>second version</p>")
    page = path.read_text(encoding="utf-8")
    assert page.count('id="extra-targeted-fine-tuning"') == 1 and "second version" in page
    assert page.index("second version") < page.index("<footer>")
    with pytest.raises(FileNotFoundError, match="No report"):
        add_report_section(tmp_path / "missing", "x", "")


def test_images_are_read_by_index_from_a_dataset(digits_run):
    """A Dataset of (image, label) draws the same exemplar strip as the tensor, reading only those samples."""
    from i2x_plugin.report import exemplar_strip

    class Recorded(torch.utils.data.Dataset):
        def __init__(self):
            self.read = set()

        def __len__(self):
            return len(digits_run.probe)

        def __getitem__(self, i):
            self.read.add(i)
            return digits_run.probe.images[i], int(digits_run.probe.labels[i])

    explanation, dataset = digits_run.explanation, Recorded()
    k = explanation.exemplars[0].prototype
    from_tensor = exemplar_strip(explanation, digits_run.probe.images, k)
    assert exemplar_strip(explanation, dataset, k) == from_tensor
    assert dataset.read == {e.sample for e in explanation.exemplars if e.prototype == k}
