"""A finished run read back from its directory, and ``i2x stability`` on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2x_plugin import I2XConfig, StructuredExplanation
from i2x_plugin.cli import main
from i2x_plugin.app.run import RunConfig, run_main
from i2x_plugin.runs.saved_run import SavedRunError, load_saved_run, read_run_files


@pytest.fixture(scope="module")
def run_dir(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved")
    run_main(RunConfig(dataset="digits", checkpoints=digits_run.checkpoint_dir, store="none", report=False, out=out,
                       run_id="s", stability=False, i2x=I2XConfig(k=8, null_draws=0)), progress=False)
    return out / "s"


def test_the_saved_run_gives_back_the_final_model_and_its_probe_set(run_dir):
    run = load_saved_run(run_dir)
    e = run.explanation
    np.testing.assert_array_equal(run.probe.labels.numpy(), e.labels)
    with torch.no_grad():
        predicted = run.model(run.probe.images).argmax(1).numpy()
    np.testing.assert_array_equal(predicted, e.predictions[-1])
    assert read_run_files(run_dir).final_checkpoint().name == f"{e.checkpoints[-1].name}.pt"


def test_an_incomplete_directory_is_named_with_what_is_missing(tmp_path):
    (tmp_path / "config.yaml").write_text("dataset: digits\n")
    with pytest.raises(SavedRunError, match=r"not a complete 'i2x run' output directory \(missing split.npz, "
                                            r"explanation/explanation.json\)"):
        load_saved_run(tmp_path)


def test_i2x_stability_records_the_recurrence_of_every_claim(run_dir, capsys):
    assert main(["stability", "--run-dir", str(run_dir), "--kmeans-seeds", "1", "--bootstraps", "1",
                 "--store", "none"]) == 0
    assert "2 re-fits (kmeans-seed-1, bootstrap-0)" in capsys.readouterr().out
    e = StructuredExplanation.load(run_dir / "explanation")
    assert e.stability is not None and e.stability.refits == ["kmeans-seed-1", "bootstrap-0"]
    assert all(d.recurrence in (0.5, 1.0) for d in e.drivers)  # the selection (0.5) kept those in ≥ 1 of 2
