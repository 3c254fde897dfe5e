"""Abstract prototypes (method.md step 2) on a real trained model's features."""

import numpy as np
import pytest
import torch

from i2x_plugin.method.prototypes import extract_features, fit_prototypes


@pytest.fixture(scope="module")
def features(digits_run):
    from i2x_plugin.training.checkpoints import default_load_func

    final = sorted(digits_run.checkpoint_dir.glob("*.pt"))[-1]
    default_load_func(digits_run.model, final)
    return extract_features(digits_run.model, "block3", digits_run.probe.images[:300])


def test_features_are_channels_last_spatial_maps(features):
    assert features.shape == (300, 4, 4, 64) and features.dtype == np.float32


def test_fit_is_seeded_and_reproducible(features):
    a = fit_prototypes(features, k=8, seed=3)
    b = fit_prototypes(features, k=8, seed=3)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    np.testing.assert_allclose(a.centers, b.centers)
    assert a.assignments.shape == (300, 4, 4) and a.k == 8


def test_every_position_goes_to_its_nearest_centre(features):
    protos = fit_prototypes(features, k=8, pca_components=5, seed=0)
    reduced = protos.pca.transform(features.reshape(-1, 64))
    nearest = ((reduced[:, None] - protos.centers[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(protos.assignments.ravel(), nearest)
    assert protos.pca.n_components_ == 5
    np.testing.assert_array_equal(protos.assign(features), protos.assignments)


def test_presence_counts_positions(features):
    protos = fit_prototypes(features, k=8, seed=0)
    presence = protos.presence()
    assert presence.shape == (300, 8) and presence.dtype == np.int32
    for k in range(8):
        np.testing.assert_array_equal(presence[:, k], (protos.assignments == k).sum((1, 2)))


def _inertia(protos, features: np.ndarray) -> float:
    reduced = protos.pca.transform(features.reshape(-1, features.shape[-1]))
    return float(((reduced - protos.centers[protos.assignments.ravel()]) ** 2).sum())


def test_minibatch_kmeans_for_many_rows(features):
    """Above minibatch_rows the centres come from MiniBatchKMeans: other centres than K-Means's, nearly as tight."""
    full = fit_prototypes(features, k=8, seed=0)  # 4,800 rows: K-Means
    mini = fit_prototypes(features, k=8, minibatch_rows=1000, seed=0)
    assert not np.allclose(np.sort(mini.centers, 0), np.sort(full.centers, 0), atol=1e-3)
    assert _inertia(full, features) <= _inertia(mini, features) < 1.2 * _inertia(full, features)
    np.testing.assert_array_equal(mini.assign(features), mini.assignments)  # still the nearest centre


def test_k_larger_than_positions(features):
    with pytest.raises(ValueError, match="K=5000 prototypes but only 4800 feature positions"):
        fit_prototypes(features, k=5000)


def test_non_spatial_layer(digits_run):
    with pytest.raises(ValueError, match="2-D output.*convolutional layer"):
        extract_features(digits_run.model, "head", torch.zeros(2, 1, 8, 8))


def test_k_beyond_the_int16_assignments_is_refused(features):
    from pydantic import ValidationError

    from i2x_plugin import I2XConfig

    with pytest.raises(ValueError, match="K=40000 prototypes is more than the 32768 that int16 assignments"):
        fit_prototypes(np.repeat(features, 10, axis=0), 40_000)
    with pytest.raises(ValidationError, match="less than or equal to 32768"):
        I2XConfig(k=40_000)
