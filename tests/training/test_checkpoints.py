"""Recording checkpoints from a training loop and loading them like Captum's TracInCP."""

import json

import pytest
import torch

from i2x_plugin.training.checkpoints import CheckpointRecorder, default_load_func, resolve_checkpoints
from i2x_plugin.training.models import SmallCNN


def test_recorder_writes_state_and_metadata_in_order(tmp_path):
    model = SmallCNN(1, 10)
    recorder = CheckpointRecorder(tmp_path)
    for epoch in range(3):
        recorder.save(model, epoch=epoch, step=10 * epoch, train_loss=1.0 / (epoch + 1))
    infos = resolve_checkpoints(tmp_path)
    assert [i.index for i in infos] == [0, 1, 2]
    assert [(i.epoch, i.step) for i in infos] == [(0, 0), (1, 10), (2, 20)]
    assert infos[2].train_loss == pytest.approx(1 / 3)
    assert json.loads(infos[1].path.with_suffix(".json").read_text())["step"] == 10


def test_list_and_iterable_sources_keep_their_order(tmp_path):
    model = SmallCNN(1, 10)
    recorder = CheckpointRecorder(tmp_path)
    paths = [recorder.save(model).path for _ in range(3)]
    assert [i.path for i in resolve_checkpoints(reversed(paths))] == paths[::-1]


def test_directory_order_is_natural(tmp_path):
    model = SmallCNN(1, 10)
    for name in ("epoch-10.pt", "epoch-2.pt", "epoch-1.pt"):
        torch.save(model.state_dict(), tmp_path / name)
    assert [i.name for i in resolve_checkpoints(tmp_path)] == ["epoch-1", "epoch-2", "epoch-10"]


def test_load_round_trips_weights(tmp_path):
    model, other = SmallCNN(1, 10), SmallCNN(1, 10)
    info = CheckpointRecorder(tmp_path).save(model)
    default_load_func(other, info.path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="it is empty"):
        resolve_checkpoints(tmp_path)


def test_directory_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"No checkpoint files.*notes.txt"):
        resolve_checkpoints(tmp_path)


def test_a_single_checkpoint_is_not_enough(tmp_path):
    CheckpointRecorder(tmp_path).save(SmallCNN(1, 10))
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        resolve_checkpoints(tmp_path)


def test_checkpoint_of_another_architecture_names_the_first_mismatched_key(tmp_path):
    info = CheckpointRecorder(tmp_path).save(SmallCNN(1, 10, width=8))
    with pytest.raises(ValueError, match=r"'block1.0.weight' has shape \(8, 1, 3, 3\)"):
        default_load_func(SmallCNN(1, 10, width=16), info.path)
    info = CheckpointRecorder(tmp_path, prefix="other").save(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="key 'block1.0.weight' is missing"):
        default_load_func(SmallCNN(1, 10), info.path)


def test_log_spaced_early_steps():
    recorder_steps = [s for s in range(1, 100) if CheckpointRecorder.should_save(s, log_spaced_early=40)]
    assert recorder_steps == [1, 2, 4, 8, 16, 32]


def test_an_empty_list_is_refused():
    with pytest.raises(ValueError, match="got 0"):
        resolve_checkpoints([])


# --- a used directory: refused, or resumed on request; never two runs in one sweep ------------------------
def test_a_recorder_refuses_a_directory_with_an_earlier_recording(tmp_path):
    model = SmallCNN(1, 10)
    first = CheckpointRecorder(tmp_path)
    for _ in range(3):
        first.save(model)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match=r"already holds 3 checkpoints .*ckpt-0000.pt .. ckpt-0002.pt.*resume=True"):
        CheckpointRecorder(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing overwritten


def test_resume_continues_the_numbering_and_the_recording(tmp_path):
    model = SmallCNN(1, 10)
    first = CheckpointRecorder(tmp_path)
    first.save(model, epoch=0)
    first.save(model, epoch=1)
    resumed = CheckpointRecorder(tmp_path, resume=True)
    info = resumed.save(model, epoch=2)
    assert info.path.name == "ckpt-0002.pt" and resumed.recording == first.recording
    infos = resolve_checkpoints(tmp_path)
    assert [i.epoch for i in infos] == [0, 1, 2] and {i.recording for i in infos} == {first.recording}


def test_a_directory_mixing_two_recordings_is_refused(tmp_path):
    model = SmallCNN(1, 10)
    for prefix in ("run-a", "run-b"):
        recorder = CheckpointRecorder(tmp_path, prefix=prefix)
        recorder.save(model)
        recorder.save(model)
    torch.save(model.state_dict(), tmp_path / "best.pt")  # saved by hand, no sidecar
    with pytest.raises(ValueError, match="mixes checkpoints of several runs") as err:
        resolve_checkpoints(tmp_path)
    assert "run-a-0000.pt .. run-a-0001.pt" in str(err.value) and "1 without a recorder sidecar (best.pt" in str(err.value)
    paths = sorted(tmp_path.glob("run-a-*.pt"))
    assert [i.path for i in resolve_checkpoints(paths)] == paths  # one run's files, as a list

