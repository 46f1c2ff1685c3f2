"""Read a session JSONL file back, so a pane opened late (or after a restart) misses nothing."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any


def read_session_records(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The last `limit` records of a session file (all when None); bad lines become error records."""
    records: deque[dict[str, Any]] = deque(maxlen=limit)
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return []
    with handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = {"kind": "error", "message": f"unreadable record in session file: {line[:200]}"}
            if isinstance(record, dict):
                records.append(record)
    return list(records)


def outcome_of(path: str | Path) -> dict[str, Any] | None:
    """The session's final `outcome` record, if it has one (a crashed supervisor leaves none)."""
    tail = read_session_records(path, limit=1)
    return tail[0] if tail and tail[0].get("kind") == "outcome" else None


def list_sessions(sessions_dir: Path, issue_id: str) -> list[Path]:
    """Every session file of an issue, oldest first (uuid7 names sort by time)."""
    directory = sessions_dir / issue_id
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.jsonl"), key=lambda p: p.name.split("-", 1)[-1])
