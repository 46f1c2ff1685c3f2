"""Session records from a byte offset: how a client tails a pane through the API.

Only whole lines are returned (a line the agent is still writing waits for the next call), and
`next_offset` is where the next call starts, so a client that keeps asking sees every record
exactly once. Without an offset, the file's last `limit` records (a pane opening). A line that
is not JSON comes back as an `error` record, as the in-process replay shows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson

from vik_tui.agents.events import Error
from vik_tui.engine.stages.replay import read_back
from vik_tui.engine.view import UNREADABLE_RECORD as UNREADABLE

MAX_BYTES = 4 * 1024 * 1024  # one answer reads at most this much (plus the rest of a long line)
BLOCK = 64 * 1024


def _record(raw: bytes) -> dict[str, Any] | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(raw)
        except ValueError:
            return Error(detail=UNREADABLE + raw[:200].decode("utf-8", "replace")).to_dict()
    return value if isinstance(value, dict) else None


def read_from(path: Path, offset: int, limit: int) -> tuple[list[dict[str, Any]], int, int]:
    """(records, next_offset, size): up to `limit` whole lines starting at byte `offset`."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if offset >= size:
            return [], min(offset, size), size
        handle.seek(offset)
        data = handle.read(MAX_BYTES)
        cut = data.rfind(b"\n")
        if cut < 0:  # one line longer than MAX_BYTES (or still being written): read it whole
            handle.seek(offset)
            data = handle.readline()
            cut = len(data) - 1 if data.endswith(b"\n") else -1
            if cut < 0:
                return [], offset, size
        records: list[dict[str, Any]] = []
        position = offset
        start = 0
        while start <= cut and len(records) < limit:
            end = data.index(b"\n", start)
            record = _record(data[start:end])
            if record is not None:
                records.append(record)
            start = end + 1
            position = offset + start
        return records, position, size


def read_tail(path: Path, limit: int) -> tuple[list[dict[str, Any]], int, int]:
    """(records, next_offset, size): the last `limit` whole lines; `next_offset` is the end of
    the last whole line, where tailing goes on."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data, position = read_back(handle, limit, size, BLOCK)
    end = data.rfind(b"\n")
    if end < 0:
        return [], position, size
    next_offset = position + end + 1
    lines = data[:end].split(b"\n")
    if position > 0:
        lines = lines[1:]  # the first one may be cut in the middle
    records = [r for r in (_record(line) for line in lines) if r is not None]
    return records[-limit:] if limit > 0 else [], next_offset, size
