"""Files are written whole or not at all."""

import pytest

from i2x_plugin.atomic import atomic_open, write_text


def test_an_interrupted_save_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "explanation.json"
    write_text(path, "the complete earlier save")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, "w") as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "the complete earlier save"
    assert [p.name for p in tmp_path.iterdir()] == ["explanation.json"]  # no temporary file left behind
