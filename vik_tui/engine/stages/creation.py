"""`after_create` that began and did not finish, recorded outside the workspace.

A workspace exists as soon as its directory does; a supervisor killed (kill -9, the OOM killer)
half-way through `after_create` (a `git clone`) left a directory that looked made, and the next
start ran the agent in the half-made checkout. So `service/after_create/<issue id>` is written
(with fsync) before the workspace is created and removed once `after_create` has succeeded; at
the next attempt a workspace whose record is still there is set aside, renamed with the reason
beside it, never deleted, and made again.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from vik_tui.engine.clock import now_iso
from vik_tui.engine.service.state import write_json_atomic


class CreationRecords:
    """`service/after_create/`: one file per issue whose `after_create` has not finished."""

    def __init__(self, service_dir: Path) -> None:
        self.directory = service_dir / "after_create"

    def began_at(self, issue_id: str) -> str | None:
        """When an unfinished `after_create` of the issue began ("?" if unreadable), else None."""
        path = self.directory / issue_id
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError:
            return "?"
        for line in text.splitlines():
            if '"began_at"' in line:
                return line.split(":", 1)[1].strip().strip('",') or "?"
        return "?"

    def begin(self, issue_id: str) -> None:
        """Durable before the workspace is made; raises OSError."""
        write_json_atomic(self.directory / issue_id, {"began_at": now_iso(), "pid": os.getpid()})

    def finish(self, issue_id: str) -> None:
        with contextlib.suppress(OSError):
            (self.directory / issue_id).unlink()


def set_aside_name(issue_id: str) -> str:
    """`<id>.<UTC time>`: where a half-made workspace goes (sorted by time, never overwritten)."""
    return f"{issue_id}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
