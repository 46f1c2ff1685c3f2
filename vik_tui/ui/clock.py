"""Time as the UI shows it. A FrozenClock makes snapshot tests deterministic.

Engine timestamps are ISO-8601 UTC strings ("2026-11-23T04:09:26.098Z"); the live UI shows
local wall-clock time, the frozen one shows UTC so a snapshot does not depend on the host's TZ.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_PARSED: dict[str, datetime | None] = {}


def parse_ts(ts: str | None) -> datetime | None:
    """ISO timestamp → aware datetime, memoised (many records share the same few strings)."""
    if not ts:
        return None
    hit = _PARSED.get(ts)
    if hit is not None or ts in _PARSED:
        return hit
    try:
        value: datetime | None = datetime.fromisoformat(ts)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    except ValueError:
        value = None
    if len(_PARSED) > 50_000:
        _PARSED.clear()
    _PARSED[ts] = value
    return value


class Clock:
    """Real time; spinner frames advance ~8 per second."""

    frozen = False

    def __init__(self) -> None:
        self._seconds: dict[str, str] = {}  # `2026-11-23T04:09:26` → its `HH:MM:SS` on screen

    def now(self) -> datetime:
        return datetime.now(UTC)

    def spinner_index(self) -> int:
        return int(time.monotonic() * 4)  # 4 frames/s: lively, and cheap to repaint

    def to_display(self, moment: datetime) -> datetime:
        return moment.astimezone()

    def hhmmss(self, ts: str | None) -> str:
        """`HH:MM:SS` of an engine timestamp; 8 spaces when unknown, so columns stay aligned.

        Memoised per second for the engine's own form (`...T04:09:26.098Z`): every record of a
        pane goes through here, and a stream has hundreds of records per second."""
        second = ts[:19] if ts and len(ts) > 19 and ts[-1] == "Z" and ts[19] == "." else None
        if second is not None:
            hit = self._seconds.get(second)
            if hit is not None:
                return hit
        moment = parse_ts(ts)
        if moment is None:
            return " " * 8
        text = self.to_display(moment).strftime("%H:%M:%S")
        if second is not None:
            if len(self._seconds) > 10_000:
                self._seconds.clear()
            self._seconds[second] = text
        return text

    def seconds_since(self, ts: str | None, until: str | None = None) -> float | None:
        start = parse_ts(ts)
        if start is None:
            return None
        end = parse_ts(until) if until else None
        return max(0.0, ((end or self.now()) - start).total_seconds())


class FrozenClock(Clock):
    """Always the same instant, UTC display, spinner on frame 0: for snapshots and screenshots."""

    frozen = True

    def __init__(self, at: str = "2026-01-15T12:00:00Z") -> None:
        super().__init__()
        parsed = parse_ts(at)
        assert parsed is not None
        self._at = parsed

    def now(self) -> datetime:
        return self._at

    def spinner_index(self) -> int:
        return 0

    def to_display(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC)
