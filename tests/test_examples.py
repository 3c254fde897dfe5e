"""Every example in examples/ runs, on small settings (I2X_EXAMPLE_SMALL=1: 8×8 digits, 2–3 epochs).

They run in this process through ``runpy`` (as ``__main__``, with their own ``sys.argv``), so the
suite does not pay a fresh interpreter and torch import per example; the graph examples use the
session's embedded server through ``I2X_STORE_DIR``.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from i2x_plugin import StructuredExplanation

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, monkeypatch, capsys) -> str:
    monkeypatch.setenv("I2X_EXAMPLE_SMALL", "1")
    monkeypatch.setattr("sys.argv", [str(EXAMPLES / name), *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("name, method", [("plain_pytorch_captum.py", "LayerGradCam"),
                                          ("gradcam_method.py", "GradCAMPlusPlus")])
def test_training_loop_examples(name, method, tmp_path, monkeypatch, capsys):
    out = run_example(name, str(tmp_path), monkeypatch=monkeypatch, capsys=capsys)
    assert "accuracy per checkpoint" in out and "learning order" in out
    explanation = StructuredExplanation.load(tmp_path / "explanation")
    assert explanation.method == method and explanation.layer == "features"
    assert len(explanation.checkpoints) == 3  # recorder: before training + 2 epochs
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 3


def test_graph_examples(tmp_path, monkeypatch, capsys, store_server):
    monkeypatch.setenv("I2X_STORE_DIR", str(store_server.data_dir))
    monkeypatch.delenv("NEO4J_URI", raising=False)
    out = run_example("query_graph.py", monkeypatch=monkeypatch, capsys=capsys)
    assert "run example-digits" in out and "learning_order" in out and "class_drivers" in out
    assert "a write through query() is refused" in out and "networkx:" in out

    page = tmp_path / "view.html"
    out = run_example("notebook_view.py", "example-digits", str(page), monkeypatch=monkeypatch, capsys=capsys)
    assert "offline view:" in out and page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "example-digits" in html and "<script" in html
