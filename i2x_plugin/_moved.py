"""The module paths of i2x-plugin 0.1, kept working for one release with a ``DeprecationWarning``.

0.1 kept all its modules side by side in ``i2x_plugin/``; they now live in the stage packages (see
docs/architecture.md). ``import i2x_plugin.structure`` gives the module now at ``i2x_plugin.method.structure``
(the same module object, so ``isinstance`` and monkeypatching still work) and warns with the new path.
``i2x_plugin.training`` and ``i2x_plugin.improve`` became packages: the names their 0.1 modules held are
found through their package's ``__getattr__`` (:func:`moved_name`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

_STAGE = {
    "method": ("config", "probe", "progress", "prototypes", "ridge", "significance", "claims", "claim_types",
               "structure", "distributed"),
    "checks": ("faithfulness", "stability"),
    "graph": ("ingest", "questions", "answers", "view"),
    "improve": ("curation", "finetune", "selection"),
    "runs": ("run_config", "run_data", "saved_run"),
    "app": ("run", "background", "cli_graph", "cli_improve"),
    "training": ("data", "models", "checkpoints", "synthetic", "lightning"),
}
MODULES: dict[str, str] = {f"i2x_plugin.{name}": f"i2x_plugin.{stage}.{name}"
                           for stage, names in _STAGE.items() for name in names}
MODULES.update({"i2x_plugin.improve_stats": "i2x_plugin.improve.stats",
                "i2x_plugin.improve_graph": "i2x_plugin.improve.graph"})
# 0.1 modules whose path is now a package: the module whose names the package hands out.
PACKAGES: dict[str, str] = {"i2x_plugin.training": "i2x_plugin.training.loop",
                            "i2x_plugin.improve": "i2x_plugin.improve.study"}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new} in i2x-plugin 0.2; import it from there ({old} goes in the next "
                  "release).", DeprecationWarning, stacklevel=3)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at its new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, MODULES[spec.name])
        return importlib.import_module(MODULES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was executed under its new name."""


def install() -> None:
    """Make the 0.1 module paths importable (once per process)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())


def moved_name(package: str, name: str) -> Any:
    """A name that ``package``'s 0.1 module held (for the package's module ``__getattr__``), with a warning."""
    home = PACKAGES[package]
    module = importlib.import_module(home)
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    _warn(f"{package}.{name}", f"{home}.{name}")
    return getattr(module, name)
