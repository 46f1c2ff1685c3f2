"""What a user-given path is, said without opening it (a FIFO would wait for a writer)."""

from __future__ import annotations

import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular_reason(mode: int) -> str:
    """`not a regular file (a FIFO)`."""
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind})"


def file_kind(path: Path) -> str | None:
    """None for a regular file (symlinks followed); "missing"; else `not_regular_reason`."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "missing"
    return None if stat.S_ISREG(mode) else not_regular_reason(mode)
