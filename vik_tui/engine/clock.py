"""Timestamps in one format everywhere (UTC ISO-8601 with milliseconds)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_second = -1  # the last whole second formatted, and its text
_second_text = ""


def now_iso() -> str:
    """Now, `2026-01-15T12:00:01.234Z`. The session stamps every read with it (at a slow pace,
    every line), so the text of the current second is kept and only the milliseconds are added
    (the same text `datetime.isoformat` gives, at a tenth of its cost)."""
    global _second, _second_text
    second, milli = divmod(time.time_ns() // 1_000_000, 1000)
    if second != _second:
        _second, _second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second_text}.{milli:03d}Z"


def iso_seconds(moment: datetime) -> str:
    """A UTC time to the second, `2026-01-15T12:00:01Z` (due times, resets, midnights)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_in(seconds: float) -> str:
    """The wall-clock time `seconds` from now (for display of due times)."""
    return iso_seconds(datetime.now(UTC) + timedelta(seconds=seconds))
