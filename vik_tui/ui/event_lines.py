"""Engine events → one readable line each for the log pane (or None to leave one out).

The words are the event's own `describe()`, the same the headless printer uses; what is left
out (the quiet events, the start line, an intake result that did not change) is decided here.
"""

from __future__ import annotations

from vik_tui.engine.engine_events import EngineEvent, Intake, IntakeFailed, SupervisorStarted
from vik_tui.ui.clock import Clock
from vik_tui.ui.text import sanitize


class EventLines:
    """Stateful only to drop repeats: an unchanged intake result every idle_sec is noise."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last_intake: tuple[int, int] | None = None

    def line(self, event: EngineEvent) -> tuple[str, str] | None:
        """(level, text) or None when the event is not worth a line."""
        if event.quiet:
            return None
        match event:
            case SupervisorStarted():
                return None
            case Intake(issues=issues, rejected=rejected):
                if (issues, rejected) == self._last_intake:
                    return None
                self._last_intake = (issues, rejected)
            case IntakeFailed():
                self._last_intake = None
        text = sanitize(event.describe()).replace("\n", " ⏎ ")
        return event.level, f"{self.clock.hhmmss(event.ts)} {text}"
