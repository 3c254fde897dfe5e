"""End to end I2X on real data and real trained models (steps 1–8), including a planted answer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerGradCam
from torch.utils.data import DataLoader, TensorDataset

from i2x_plugin import I2X, I2XConfig, StructuredExplanation
from i2x_plugin.adapters import CaptumAdapter, GradCamAdapter, build_adapter
from i2x_plugin.checkpoints import CheckpointRecorder, default_load_func
from i2x_plugin.models import SmallCNN
from i2x_plugin.synthetic import make_planted_shapes
from i2x_plugin.training import seeded


# --- a planted answer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Four texture classes; classes 0 and 1 share the bright ``solid`` block (method: trained from scratch)."""
    shapes = make_planted_shapes(n_per_class=200, size=32, noise=0.05, seed=2,
                                 brightness={"hstripes": 0.6, "vstripes": 0.6})
    with seeded(2):  # initial weights and dropout; the global RNG is left as it was
        model = SmallCNN(1, 4, pools=1, width=16)
        recorder = CheckpointRecorder(tmp_path_factory.mktemp("planted-ckpts"))
        loader = DataLoader(TensorDataset(shapes.data.images, shapes.data.labels), batch_size=32, shuffle=True,
                            generator=torch.Generator().manual_seed(2))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        recorder.save(model, epoch=0, step=0)
        step = 0
        for epoch in range(6):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                step += 1
                if step % 10 == 0:
                    recorder.save(model, epoch=epoch + 1, step=step, train_loss=loss.item())
    model.eval()
    explanation = I2X(model, "block3", config=I2XConfig(k=16, seed=2)).explain(recorder.directory, shapes.data)
    return shapes, explanation


def prototype_shapes_by_class(shapes, explanation, receptive_field: int = 9) -> dict[tuple[int, int], str]:
    """What each prototype covers inside the samples of each class, from the masks the data was drawn with.

    A feature cell sees ``receptive_field`` pixels around it, so a cell is labelled by the shape with the
    most pixels in that window ("bg" when none); a prototype takes its cells' majority label (or "mix").
    """
    names = shapes.shape_names
    one_hot = torch.from_numpy(np.stack([shapes.masks == s for s in range(len(names))], 1).astype(np.float32))
    stride = shapes.masks.shape[1] // explanation.map_size[0]
    window = torch.nn.functional.avg_pool2d(one_hot, receptive_field, stride, receptive_field // 2,
                                            count_include_pad=False).numpy()
    cell_shape = np.where(window.max(1) > 0, window.argmax(1), -1)
    labels = {}
    for c in range(explanation.num_classes):
        in_class = explanation.labels == c
        for k in range(explanation.k):
            cells = cell_shape[in_class][explanation.assignments[in_class] == k]
            if len(cells) == 0:
                continue
            values, counts = np.unique(cells, return_counts=True)
            top = counts.argmax()
            labels[c, k] = ("bg" if values[top] < 0 else names[values[top]]) if counts[top] > counts.sum() / 2 else "mix"
    return labels


def test_planted_shared_shape_and_class_specific_shapes_are_recovered(planted):
    shapes, e = planted
    covers = prototype_shapes_by_class(shapes, e)
    drivers = {c: {d.prototype for d in e.drivers if d.cls == c} for c in range(4)}
    # The pair sharing the planted shape is the last to separate and the only one still confused.
    assert e.learning_order[-1] == [0, 1]
    assert {(u.a, u.b) for u in e.uncertain} <= {(0, 1)}
    # The shared shape's prototypes drive both classes that contain it (or are uncertain between them)...
    solid_0 = {k for k in drivers[0] if covers.get((0, k)) == "solid"}
    solid_1 = {k for k in drivers[1] if covers.get((1, k)) == "solid"}
    uncertain_solid = {u.prototype for u in e.uncertain if covers.get((0, u.prototype)) == "solid"}
    assert (solid_0 & solid_1) or uncertain_solid
    # ...and each class is driven by its own shapes, never by another class's.
    for c, own in enumerate(shapes.class_shapes):
        driven_by = {covers.get((c, k)) for k in drivers[c]}
        assert driven_by & set(own), (c, driven_by)
        assert not driven_by & (set(shapes.shape_names) - set(own)), (c, driven_by)


def test_planted_structure_is_typed_and_consistent(planted):
    _, e = planted
    t, n, k, c = len(e.checkpoints), len(e.labels), e.k, e.num_classes
    assert e.intensities.shape == (t, n, k) and e.confidences.shape == (t, n, c)
    assert e.beta_step.shape == (t - 1, k, c) and e.beta_class.shape == (t - 1, c, k, c)
    assert e.beta_pair.shape == (t - 1, c * (c - 1) // 2, k, c)
    assert e.checkpoints[-1].accuracy > 0.9
    assert np.all(e.presence.sum(1) == np.prod(e.map_size))
    assert all(s.kind in ("shared", "specialised") for s in e.shared)
    assert {len(s.box) for s in e.exemplars} == {4}


# --- scikit-learn digits --------------------------------------------------------------------------
def test_digits_run_end_to_end(digits_run):
    e = digits_run.explanation
    t, k, c = len(e.checkpoints), e.k, 10
    assert t == len(list(digits_run.checkpoint_dir.glob("*.pt")))
    assert e.beta_step.shape == (t - 1, k, c)
    assert e.beta_group.shape[1:] == (k, c) and len(e.beta_group) > 0
    assert e.groups and e.drivers and e.separations and e.exemplars
    assert e.checkpoints[-1].accuracy > e.checkpoints[0].accuracy
    assert e.layer == "block3" and e.method == "LayerGradCam"


def test_digits_same_seed_gives_identical_results(digits_run):
    again = digits_run.explain_again()
    e = digits_run.explanation
    np.testing.assert_array_equal(again.assignments, e.assignments)
    np.testing.assert_array_equal(again.group_labels, e.group_labels)
    np.testing.assert_allclose(again.beta_step, e.beta_step, rtol=1e-5, atol=1e-7)
    assert again.uncertain == e.uncertain and again.separators == e.separators


def test_save_and_load_round_trip(digits_run, tmp_path):
    e = digits_run.explanation
    loaded = StructuredExplanation.load(e.save(tmp_path / "run"))
    assert loaded.config == e.config and loaded.checkpoints == e.checkpoints
    assert loaded.uncertain == e.uncertain and loaded.shared == e.shared and loaded.exemplars == e.exemplars
    for name in StructuredExplanation._ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(e, name))
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "run").iterdir())


def test_gradcam_adapter_runs_the_same_pipeline(digits_run):
    e = digits_run.explain_again(adapter="gradcam")
    assert e.method == "GradCAM"
    # GradCAM from both libraries is the same map, so the same checkpoints give the same accuracy and β.
    assert [c.accuracy for c in e.checkpoints] == [c.accuracy for c in digits_run.explanation.checkpoints]
    np.testing.assert_allclose(e.beta_step, digits_run.explanation.beta_step, atol=1e-3)


# --- bad input ----------------------------------------------------------------------------------------
def test_labels_outside_the_model_classes(digits_run):
    data = digits_run.probe
    bad = (data.images[:20], torch.full((20,), 12))
    with pytest.raises(ValueError, match="Label 12 is outside the model's 10 classes"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, bad)


def test_a_class_without_probe_samples(digits_run):
    data = digits_run.probe
    keep = data.labels != 3
    with pytest.raises(ValueError, match=r"Classes \['3'\] have no samples"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, data.subset(torch.nonzero(keep).flatten()))


def test_integer_images_are_refused(digits_run):
    with pytest.raises(TypeError, match="integer dtype"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, ((digits_run.probe.images * 16).long(),
                                                              digits_run.probe.labels))


def test_k_larger_than_feature_positions(digits_run):
    small = digits_run.probe.subset(torch.arange(3))
    with pytest.raises(ValueError, match="only 48 feature positions"):
        digits_run.i2x(k=100).fit_prototypes(small.images)


def test_layer_with_a_one_by_one_map(digits_run):
    model = digits_run.model
    with pytest.raises(ValueError, match="1×1 map.*earlier convolutional layer"):
        I2X(model, "head.0").fit_prototypes(digits_run.probe.images[:8])


def test_nan_checkpoint_is_named(digits_run, tmp_path):
    state = torch.load(sorted(digits_run.checkpoint_dir.glob("*.pt"))[-1])
    state["head.2.bias"] = torch.full_like(state["head.2.bias"], float("nan"))
    good = sorted(digits_run.checkpoint_dir.glob("*.pt"))[0]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(FloatingPointError, match="broken.pt gives NaN/inf"):
        digits_run.i2x().explain([good, tmp_path / "broken.pt"], digits_run.probe)


# --- misuse is caught, and the caller's model is given back ----------------------------------------------
def _small_probe(digits_run, n: int = 200):
    probe = digits_run.probe.subset(torch.arange(n))
    assert len(probe.labels.unique()) == 10
    return probe


def test_an_adapter_on_another_model_instance_is_refused_naming_both(digits_run):
    model, other = digits_run.model, SmallCNN(1, 10, pools=1)
    with pytest.raises(ValueError, match="another model instance") as err:
        I2X(model, "block3", adapter=build_adapter("captum", other, "block3"))
    assert f"SmallCNN at {id(other):#x}" in str(err.value) and f"SmallCNN at {id(model):#x}" in str(err.value)


def test_an_adapter_at_another_layer_of_the_same_size_is_refused_naming_both(digits_run):
    model = digits_run.model
    with pytest.raises(ValueError, match="layer 'block2', but I2X's prototypes are at layer 'block3'"):
        I2X(model, "block3", adapter=build_adapter("gradcam", model, "block2"))


def test_a_raw_captum_object_is_wrapped_with_an_explicit_relu(digits_run):
    model, probe = digits_run.model, _small_probe(digits_run, 64)
    raw = LayerGradCam(model, model.block3)
    i2x = I2X(model, "block3", adapter=raw)
    assert isinstance(i2x.adapter, CaptumAdapter) and i2x.adapter.relu and "relu=True" in repr(i2x.adapter)
    signed = raw.attribute(probe.images, target=probe.labels)
    assert (signed < 0).any()  # Captum's own maps are signed; what I2X sweeps is GradCAM's ReLU of them
    wrapped = i2x.adapter.attribute(probe.images, target=probe.labels)
    assert torch.equal(wrapped, torch.relu(signed.detach()))
    with pytest.raises(TypeError, match="layer attribution"):
        I2X(model, "block3", adapter=IntegratedGradients(model))


def test_confidences_come_from_a_clean_forward_even_with_aug_smooth(digits_run):
    model, probe = digits_run.model, _small_probe(digits_run)
    adapter = GradCamAdapter(model, "block3", aug_smooth=True)
    e = I2X(model, "block3", adapter=adapter, config=I2XConfig(k=8)).explain(digits_run.checkpoint_dir, probe)
    clean = copy.deepcopy(model)
    for t, ckpt in enumerate(e.checkpoints):
        default_load_func(clean, ckpt.path)
        with torch.no_grad():
            expected = torch.softmax(clean.eval()(probe.images), dim=1).numpy()
        np.testing.assert_allclose(e.confidences[t], expected, rtol=1e-5, atol=1e-6)


def test_explain_gives_the_model_back_as_it_found_it(digits_run):
    with seeded(5):
        model = SmallCNN(1, 10, pools=1)  # weights that none of the checkpoints has
    model.train()
    model.head.eval()
    model.block1.requires_grad_(False)
    model(digits_run.probe.images[:4]).sum().backward()  # gradients the caller's optimiser may still need
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    I2X(model, "block3", config=I2XConfig(k=8), device="cpu").explain(digits_run.checkpoint_dir,
                                                                     _small_probe(digits_run))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all((p.grad is None) == (grads[n] is None) and (p.grad is None or torch.equal(p.grad, grads[n]))
               for n, p in model.named_parameters())
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}


def test_sample_ids_need_one_unique_integer_per_probe_sample(digits_run):
    i2x, probe = digits_run.i2x(), _small_probe(digits_run)
    with pytest.raises(ValueError, match="sample_ids has shape \\(199,\\) but the probe set has 200 samples"):
        i2x.explain(digits_run.checkpoint_dir, probe, sample_ids=np.arange(199))
    with pytest.raises(ValueError, match="sample_ids are not unique \\(7 appears 2 times\\)"):
        i2x.explain(digits_run.checkpoint_dir, probe, sample_ids=np.r_[np.arange(199), 7])


@pytest.mark.parametrize("count", [9, 11])
def test_class_names_must_name_every_class(digits_run, count):
    names = [f"digit {c}" for c in range(count)]
    with pytest.raises(ValueError, match=f"class_names has {count} names but the model has 10 classes"):
        digits_run.i2x().explain(digits_run.checkpoint_dir, _small_probe(digits_run), class_names=names)


def test_files_of_two_different_saves_are_refused(digits_run, tmp_path):
    e = digits_run.explanation
    e.save(tmp_path / "a")
    e.save(tmp_path / "b")
    (tmp_path / "b" / "arrays.npz").replace(tmp_path / "a" / "arrays.npz")  # as if a save stopped half-way
    with pytest.raises(ValueError, match="come from different saves"):
        StructuredExplanation.load(tmp_path / "a")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_explain_on_the_gpu_gives_a_cpu_model_back_on_the_cpu(digits_run):
    model = copy.deepcopy(digits_run.model)
    e = I2X(model, "block3", config=I2XConfig(k=8), device="cuda").explain(digits_run.checkpoint_dir,
                                                                         _small_probe(digits_run))
    assert {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()} == {"cpu"}
    assert e.checkpoints[-1].accuracy > e.checkpoints[0].accuracy
