"""The one way a whole file is replaced on disk: a temp file in the same directory, fsync,
rename over the old one, fsync the directory. A reader sees the old file or the new one, never
half of either, and after a crash the rename has happened or it has not."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, temp_name: str | None = None) -> None:
    """Replace `path` with `data` (text is UTF-8). The temp file is a private `mkstemp` one
    (`mode` then sets its permissions), or `temp_name` beside it, created as `open` would (vik
    writes state.json through `state.json.tmp.<pid>`). Raises OSError; leaves no temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if temp_name is not None:
        tmp = path.with_name(temp_name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
