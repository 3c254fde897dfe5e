"""RunConfig: files, validation errors that name the field, overrides, and every field documented."""

from __future__ import annotations


import pytest
from pydantic import ValidationError

from i2x_plugin import I2XConfig
from i2x_plugin.runs.run_config import RunConfig, RunError, format_validation_error


def test_config_round_trips_through_yaml_and_json(tmp_path):
    config = RunConfig(dataset="digits", epochs=3, i2x=I2XConfig(k=12, ridge_alpha=0.5))
    (tmp_path / "run.yaml").write_text(config.to_yaml())
    (tmp_path / "run.json").write_text(config.model_dump_json())
    assert RunConfig.from_file(tmp_path / "run.yaml") == config
    assert RunConfig.from_file(tmp_path / "run.json") == config


def test_config_errors_name_the_field(tmp_path):
    (tmp_path / "bad.yaml").write_text("epochs: three\ni2x:\n  kk: 3\n")
    with pytest.raises(ValidationError) as info:
        RunConfig.from_file(tmp_path / "bad.yaml")
    text = format_validation_error(info.value)
    assert "epochs: Input should be a valid integer" in text and "'three'" in text
    assert "i2x.kk: Extra inputs are not permitted" in text
    (tmp_path / "broken.yaml").write_text("epochs: [1,\n")
    with pytest.raises(RunError, match="not valid YAML"):
        RunConfig.from_file(tmp_path / "broken.yaml")


def test_config_rejects_unknown_dataset_and_model_with_the_choices():
    with pytest.raises(ValidationError, match="digits .*mnist-5k.*fashion-mnist.*ImageFolder"):
        RunConfig(dataset="imagenet")
    with pytest.raises(ValidationError, match="small-cnn, resnet18"):
        RunConfig(model="vgg")
    assert RunConfig(model="my_pkg.models:build").model == "my_pkg.models:build"


def test_every_setting_is_documented():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "method.md").read_text()
    for name in list(I2XConfig.model_fields) + list(RunConfig.model_fields):
        assert f"| `{name}` |" in text, f"docs/method.md does not document {name}"


def test_updated_applies_overrides_and_k():
    config = RunConfig().updated(dataset="digits", k=7, epochs=None, seed=3)
    assert (config.dataset, config.i2x.k, config.epochs) == ("digits", 7, RunConfig().epochs)
    assert config.seed == config.i2x.seed == 3
