"""One supervisor per workflow: a kernel lock, and service/state.json written atomically."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from vik_tui.engine.service.atomic import write_atomic


class AlreadyRunning(Exception):
    """Another supervisor holds the workflow's lock; the message says who."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Pretty JSON with a final newline, replaced whole (`atomic.write_atomic`)."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


class WorkflowLock:
    """`fcntl.flock` on service/lock; the file names the holder for the next one who asks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, holder: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._fd is not None:
            return  # already ours
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self._describe_holder()) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder, default=str).encode(), 0)
            os.fsync(fd)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _describe_holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        pid = info.get("pid", "?")
        since = info.get("started_at", "?")
        where = info.get("cwd", "?")
        return f"another vik-tui supervises this workflow (pid {pid}, started {since}, cwd {where}); lock: {self.path}"
