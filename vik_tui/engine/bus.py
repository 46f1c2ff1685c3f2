"""The engine's event bus: subscribers get every engine event, and the logged ones go to the
daily log first. A subscriber that raises is detached and the others are told, so a broken
screen or printer can never stop the engine that calls `emit`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.logs import DailyLog

INTAKE_HEARTBEAT_SEC = 3600.0


class EventBus:
    """Listeners in subscription order, and the daily log the logged events are written to."""

    def __init__(self, log: DailyLog) -> None:
        # a new tuple per change, so `emit` iterates it as it was when the event came, with no
        # copy per event
        self._listeners: tuple[ee.Listener, ...] = ()
        self._log = log
        self._intake_logged: tuple[int, int, float] | None = None  # counts and when, of the last one logged

    @property
    def listened(self) -> bool:
        """Whether anyone subscribes (a caller may skip building an event nobody reads)."""
        return bool(self._listeners)

    def subscribe(self, listener: ee.Listener) -> Callable[[], None]:
        self._listeners = (*self._listeners, listener)
        return lambda: self._unsubscribe(listener)

    def _unsubscribe(self, listener: ee.Listener) -> None:
        if listener in self._listeners:
            at = self._listeners.index(listener)
            self._listeners = self._listeners[:at] + self._listeners[at + 1 :]

    def emit(self, event: ee.EngineEvent) -> None:
        """To the daily log and every subscriber; nothing raised by either escapes (a record the
        log cannot take is dropped and counted, a subscriber that raises is detached)."""
        if event.logged and self._worth_logging(event):
            self._log.write_event(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception as exc:  # a broken subscriber must never stop the engine
                self._listener_failed(listener, exc)

    def _worth_logging(self, event: ee.EngineEvent) -> bool:
        """An `intake` with the same counts as the last one logged is a heartbeat: one an hour
        goes to the log file, not one per poll (at `idle_sec: 5` they were over half of it).
        Subscribers still get every one."""
        if not isinstance(event, ee.Intake):
            return True
        now = time.monotonic()
        last = self._intake_logged
        if last is not None and last[:2] == (event.issues, event.rejected) and now - last[2] < INTAKE_HEARTBEAT_SEC:
            return False
        self._intake_logged = (event.issues, event.rejected, now)
        return True

    def log(self, level: ee.Level, message: str) -> None:
        self.emit(ee.Log(level=level, message=message))

    def close(self) -> None:
        self._log.close()

    def _listener_failed(self, listener: ee.Listener, exc: Exception) -> None:
        """Drop a subscriber that raised, and say so once (in the log file and to the others)."""
        self._unsubscribe(listener)
        event = ee.Log(
            level="error", message=f"an engine subscriber failed and was detached: {type(exc).__name__}: {exc}"
        )
        self._log.write_event(event)
        for other in self._listeners:
            with contextlib.suppress(Exception):
                other(event)
