"""The ``i2x`` command's entry point (``i2x ...`` and ``python -m i2x_plugin.cli ...``, as torchrun starts it).

The commands live in :mod:`i2x_plugin.app.cli`; this path stays so that the console script, torchrun command
lines and scripts written for 0.1 keep working.
"""

from __future__ import annotations

from .app.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
