"""Daily JSON-lines log files (INFO+ and errors), kept for 7 days, in the shape of vik's records.

Retention goes by the date in each file's name, within reason: the file being written is never
deleted, and the newest 7 of each kind are kept whatever the clock says (a clock stepped 30
days ahead and back again deleted every log written so far).

vik writes tracing-subscriber JSON: `timestamp`, `level` (`INFO`, `WARN`, `ERROR`), `message`,
the event's fields, `target`. We write the same keys in the same order; the fields are our
engine event's (`event` names it), and there are no tracing `span`/`spans`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vik_tui.engine.engine_events import EngineEvent
from vik_tui.engine.service.journal import Journal, json_line

RETENTION_DAYS = 7
LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "fatal": 50}
_DATED = re.compile(r"^(vik|vik-error)\.log\.(\d{4}-\d{2}-\d{2})$")


def utc_today() -> date:
    return datetime.now(UTC).date()


TARGET = "vik_tui::engine"
_VIK_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "warn": "WARN", "error": "ERROR"}


def log_record(event: EngineEvent) -> dict[str, Any]:
    """One engine event as a vik-shaped log record."""
    fields = event.to_json()
    ts = str(fields.pop("ts", ""))
    level = str(fields.pop("level", "info"))
    record: dict[str, Any] = {
        "timestamp": ts,
        "level": _VIK_LEVELS.get(level, level.upper()),
        "message": event.describe(),
    }
    record.update((key, value) for key, value in fields.items() if key not in record)
    record["target"] = TARGET
    return record


class DailyLog:
    """Appends records to `vik.log.YYYY-MM-DD`; errors also to `vik-error.log.YYYY-MM-DD`.

    A log that cannot be written (a full disk) never stops the engine: the record is dropped,
    `failure` says why, and the next record tries again. Records are whole lines (`Journal`).
    """

    def __init__(
        self, directory: Path, retention_days: int = RETENTION_DAYS, today: Callable[[], date] = utc_today
    ) -> None:
        self.directory = directory
        self.today = today  # the wall clock's date (injected by tests: it can be stepped)
        self.retention_days = retention_days
        self.failure: OSError | None = None  # the last write error, None once writes succeed
        self.dropped = 0
        self._day: date | None = None
        self._main: Journal | None = None
        self._errors: Journal | None = None

    def write_event(self, event: EngineEvent) -> None:
        """`write(log_record(event))`, and nothing raised escapes: the engine's `emit` calls it
        for every event, and a log problem must never stop the supervisor."""
        try:
            self.write(log_record(event))
        except Exception as exc:  # a bug in a record's rendering: the record is dropped and counted
            self.failure = OSError(f"{type(exc).__name__}: {exc}")
            self.dropped += 1

    def write(self, record: dict[str, Any]) -> None:
        level = LEVELS.get(str(record.get("level", "info")).lower(), 20)
        if level < LEVELS["info"]:
            return
        line = json_line(record)
        try:
            self._roll()
            assert self._main is not None
            self._main.write(line)
            self._main.flush()
            if level >= LEVELS["error"]:
                if self._errors is None:
                    self._errors = Journal(self.directory / f"vik-error.log.{self._day}", buffer_size=1)
                self._errors.write(line)
                self._errors.flush()
        except OSError as exc:
            self.failure = exc
            self.dropped += 1
            self.close()  # reopened by the next write
        else:
            self.failure = None

    def close(self) -> None:
        for handle in (self._main, self._errors):
            if handle is not None:
                try:
                    handle.close()
                except OSError:
                    handle.discard()
        self._main = self._errors = None

    def _roll(self) -> None:
        today = self.today()
        if today == self._day and self._main is not None:
            return
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._day = today
        self._main = Journal(self.directory / f"vik.log.{today}", buffer_size=1)
        prune(self.directory, today, self.retention_days)


def prune(directory: Path, today: date, retention_days: int = RETENTION_DAYS) -> list[Path]:
    """Delete dated log files older than the retention window, except today's (being written)
    and the newest `retention_days` of each kind; return what was removed."""
    removed: list[Path] = []
    cutoff = today - timedelta(days=retention_days - 1)
    dated: dict[str, list[tuple[date, Path]]] = {}
    for path in directory.iterdir():
        match = _DATED.match(path.name)
        if not match:
            continue
        try:
            day = date.fromisoformat(match.group(2))
        except ValueError:
            continue
        dated.setdefault(match.group(1), []).append((day, path))
    for files in dated.values():
        files.sort(reverse=True)
        for day, path in files[retention_days:]:  # the newest are kept whatever the clock says
            if day < cutoff and day != today:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
