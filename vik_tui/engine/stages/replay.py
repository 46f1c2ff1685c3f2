"""Read a session JSONL file back, so a pane opened late (or after a restart) misses nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from vik_tui.agents.events import AgentEvent, Error, Outcome
from vik_tui.engine.view import UNREADABLE_RECORD


def read_session_records(path: str | Path, limit: int | None = None) -> list[AgentEvent]:
    """The last `limit` events of a session file (all when None); bad lines become `Error` events
    (without a `ts`: that tells them from what the agent said).

    With a limit only the file's tail is read, so opening the pane of a session with millions
    of events costs the same as opening a small one.
    """
    try:
        lines = _tail_lines(Path(path), limit) if limit is not None else Path(path).read_bytes().splitlines()
    except OSError:
        return []
    events: list[AgentEvent] = []
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        try:
            record = _load(raw)
        except ValueError:
            events.append(Error(detail=UNREADABLE_RECORD + raw[:200].decode("utf-8", "replace")))
            continue
        if isinstance(record, dict):
            events.append(AgentEvent.from_record(record))
    return events[-limit:] if limit is not None else events


def read_back(handle: BinaryIO, lines: int, end: int, block: int = 64 * 1024) -> tuple[bytes, int]:
    """The file's bytes before `end`, read backwards block by block until they hold more than
    `lines` newlines (or the file's start): (those bytes, the offset they begin at). The first
    line is cut in the middle unless the offset is 0. The API's tail reads the same way."""
    position, data = end, b""
    while position > 0 and data.count(b"\n") <= lines:
        step = min(block, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
    return data, position


def _tail_lines(path: Path, limit: int) -> list[bytes]:
    """The last `limit` non-empty lines of a file."""
    if limit <= 0:
        return []
    with open(path, "rb") as handle:
        data, position = read_back(handle, limit, handle.seek(0, 2))
    lines = [line for line in data.split(b"\n") if line.strip()]
    if position > 0 and lines:
        lines = lines[1:]  # the first one may be cut in the middle
    return lines[-limit:]


def outcome_of(path: str | Path) -> Outcome | None:
    """The session's outcome: its last record, a `completed` or `error` carrying an `outcome`
    object (or the `outcome` line of files written before). A crashed supervisor leaves none."""
    tail = read_session_records(path, limit=1)
    return tail[0] if tail and isinstance(tail[0], Outcome) else None


def list_sessions(sessions_dir: Path, issue_id: str) -> list[Path]:
    """Every session file of an issue, oldest first (uuid7 names sort by time)."""
    directory = sessions_dir / issue_id
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.jsonl"), key=lambda p: p.stem[-36:])  # the uuid7 part


def read_session_head(path: str | Path, limit: int = 20) -> list[AgentEvent]:
    """The first `limit` records of a session file (the `session_started` record is among them)."""
    events: list[AgentEvent] = []
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                if len(events) >= limit:
                    break
                try:
                    record = _load(raw)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    events.append(AgentEvent.from_record(record))
    except OSError:
        return []
    return events


def _load(raw: bytes) -> Any:
    """One line's JSON: orjson for speed, the stdlib for what orjson refuses (integers beyond
    64 bits, NaN). Raises ValueError when the line is not JSON at all."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
