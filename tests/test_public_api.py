"""The public API survives the stage layout: the facade, every import the README, docs and examples show, the
0.1 module paths (with a DeprecationWarning naming the new one) and the ``i2x_plugin.cli`` entry point."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from i2x_plugin._moved import MODULES, PACKAGES

ROOT = Path(__file__).resolve().parent.parent
_FROM = re.compile(r"from (i2x_plugin[\w.]*) import\s*\(?\s*([\w\s,]+?)\s*\)?\s*(?:#|`|$)", re.M)


def _shown_imports() -> list[tuple[str, str, str]]:
    """(file, module, name) of every ``from i2x_plugin... import`` in README.md, docs/*.md and examples/*.py."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for module, names in _FROM.findall(path.read_text()):
            found += [(path.name, module, n.strip()) for n in names.replace("\n", " ").split(",") if n.strip()]
    for path in sorted((ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("i2x_plugin"):
                found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


SHOWN = _shown_imports()


def test_the_facade_names_import():
    from i2x_plugin import CheckpointRecorder, I2X, I2XConfig, StructuredExplanation  # noqa: F401


def test_the_docs_show_imports():
    """The reader of the docs finds the README's and the examples' imports (a check of the test itself)."""
    files = {f for f, _, _ in SHOWN}
    assert {"README.md", "plain_pytorch_captum.py", "query_graph.py"} <= files and len(SHOWN) >= 20


@pytest.mark.parametrize(("where", "module", "name"), SHOWN, ids=[f"{f}:{m}.{n}" for f, m, n in SHOWN])
def test_every_import_the_docs_show_works_without_a_warning(where, module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert hasattr(importlib.import_module(module), name), f"{where}: from {module} import {name}"


@pytest.mark.parametrize("old", sorted(MODULES))
def test_a_0_1_module_path_still_imports_and_names_its_new_path(old):
    new = importlib.import_module(MODULES[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(MODULES[old])):
        module = importlib.import_module(old)
    assert module is new


@pytest.mark.parametrize(("package", "name"), [("i2x_plugin.training", "train_with_checkpoints"),
                                               ("i2x_plugin.training", "seeded"),
                                               ("i2x_plugin.improve", "improve"),
                                               ("i2x_plugin.improve", "ImproveConfig")])
def test_a_0_1_module_that_became_a_package_still_hands_out_its_names(package, name):
    with pytest.warns(DeprecationWarning, match=re.escape(f"{PACKAGES[package]}.{name}")):
        value = getattr(importlib.import_module(package), name)
    assert value is getattr(importlib.import_module(PACKAGES[package]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        getattr(importlib.import_module(package), "nothing_here")


def test_old_structure_and_explain_paths_give_the_same_classes():
    from i2x_plugin import I2X, StructuredExplanation

    with pytest.warns(DeprecationWarning, match="i2x_plugin.method.structure"):
        sys.modules.pop("i2x_plugin.structure", None)
        from i2x_plugin.structure import StructuredExplanation as old

    assert old is StructuredExplanation
    from i2x_plugin.explain import I2X as facade  # the I2X facade's own module: no warning

    assert facade is I2X


def test_the_cli_entry_point_runs_as_a_module():
    """``python -m i2x_plugin.cli`` (what torchrun starts) and the console script's ``i2x_plugin.cli:main``."""
    from i2x_plugin.app.cli import main
    from i2x_plugin.cli import main as entry

    assert entry is main
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-m", "i2x_plugin.cli", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "stability" in out.stdout, out.stderr
