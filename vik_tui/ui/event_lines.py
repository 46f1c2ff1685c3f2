"""Engine events → one readable line each for the log pane (or None to leave one out).

Builds on the headless printer's wording (`engine.headless.format_event`) so the two read
the same; only the noisiest events are shortened or skipped here.
"""

from __future__ import annotations

from typing import Any

from vik_tui.engine.headless import QUIET_EVENTS, format_event
from vik_tui.ui.clock import Clock
from vik_tui.ui.text import one_line, sanitize

SKIP = set(QUIET_EVENTS) | {"supervisor_started"}


class EventLines:
    """Stateful only to drop repeats: an unchanged intake result every idle_sec is noise."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last_intake: tuple[Any, ...] | None = None

    def line(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """(level, text) or None when the event is not worth a line."""
        name = event.get("event", "")
        if name in SKIP:
            return None
        level = str(event.get("level") or "info")
        where = f"{event.get('issue')}/{event.get('stage')} " if event.get("stage") else ""
        if name == "intake":
            key = (event.get("issues"), event.get("rejected"))
            if key == self._last_intake:
                return None
            self._last_intake = key
            text = f"intake: {event.get('issues')} issues, {event.get('rejected')} rejected"
        elif name == "intake_failed":
            self._last_intake = None
            text = f"intake failed: {one_line(event.get('error'), 300)}"
        elif name == "stage_started":
            text = f"{where}started (attempt {event.get('attempt')}, pid {event.get('pid')})"
        elif name == "intake_paused":
            text = "intake paused"
        elif name == "intake_resumed":
            text = "intake resumed"
        elif name == "reconcile_pending":
            text = f"{where}will stop in {event.get('grace_sec', 0):g}s: {event.get('reason')}"
        elif name == "retry_dropped":
            text = f"{where}retry dropped: {event.get('reason')}"
        elif name == "config_reloaded":
            warnings = event.get("warnings") or 0
            text = "workflow reloaded" + (f" ({warnings} warnings)" if warnings else "")
        elif name == "config_rejected":
            count = len(event.get("errors") or [])
            text = (
                f"workflow edit rejected ({count} error{'s' if count != 1 else ''}); the last good configuration stays"
            )
        elif name == "supervisor_stopped":
            text = "supervisor stopped"
        else:
            text = format_event(event)[9:]
            for marker in ("ERROR ", "WARN  "):
                if text.startswith(marker):
                    text = text[len(marker) :]
        stamp = self.clock.hhmmss(event.get("ts"))
        return level, f"{stamp} {sanitize(text).replace(chr(10), ' ⏎ ')}"
