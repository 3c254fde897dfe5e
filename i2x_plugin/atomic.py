"""Files written whole or not at all: a temporary name beside the target, then ``os.replace``.

Every file the project writes (checkpoints, explanation JSON + NPZ, report, improve results, run
summary and config) goes through :func:`atomic_open`, so an interrupted save leaves the previous
file intact and never a truncated one under the real name.

>>> with atomic_open("model.pt") as f:
...     torch.save(model.state_dict(), f)
>>> write_text("summary.json", json.dumps(summary))
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator, Literal


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "wb", *,
                encoding: str | None = "utf-8", permissions: int = 0o666) -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends it replaces ``path`` in one step.

    The data is flushed to disk (``fsync``) before the rename, so even a crash of the machine leaves
    either the old file or the new one. If the block raises, the temporary file is removed and
    ``path`` is untouched. ``permissions`` (before the umask) as for a plain ``open``; credentials
    pass ``0o600``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, permissions)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """``Path.write_text``, atomically."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """``Path.write_bytes``, atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


__all__ = ["atomic_open", "write_bytes", "write_text"]
