"""When the app repaints, and how much of the screen: the UI's frame timing, in one place.

Engine events and streamed records only mark the frame dirty; the app's timer (`FRAME`) asks
`next_frame()` whether to repaint now. A burst of events becomes one repaint. A full repaint
(a new snapshot, the header, the table's changed cells) follows every engine event that is not
streamed text, and otherwise at most every `FULL_EVERY` seconds (also with nothing new: timers
and the spinner move). While many agents stream a DataTable repaint (every row) is the
costliest thing the UI does, so the table is rebuilt at most every `FULL_EVERY_BUSY` and the
pane's text written at most every `PANE_EVERY_BUSY`.
"""

from __future__ import annotations

FRAME = 0.05  # the repaint timer
FULL_EVERY = 0.25  # header and table at most 4x/s unless an engine event changed them
BUSY_STREAMS = 5  # more sessions than this streamed since the last frame: busy
FULL_EVERY_BUSY = 1.0  # ... and once a second while busy (the TIME column's pace; each full
# repaint moves every running row's spinner and re-renders those rows)
PANE_EVERY_BUSY = 0.1  # ... the pane's text 10x/s while busy (each write re-renders its lines)
BUSY_HOLD = 1.0  # busy lasts this long after a frame that saw it: a tick 50 ms after a frame
# sees only a few of 100 agents that print every half second, and was taken for quiet


class FramePace:
    """The app's frame state: what changed since the last repaint, and when the last ones were."""

    def __init__(self) -> None:
        self._dirty = True
        self._forced = True  # the next repaint is a full one
        self._streams: set[str] = set()  # sessions that streamed since the last repaint
        self._last_frame = float("-inf")
        self._last_full = float("-inf")
        self._busy_until = float("-inf")

    def changed(self) -> None:
        """Something on screen changed (an engine event, the engine stopped, quitting)."""
        self._dirty = True

    def streamed(self, session_file: str) -> None:
        self._dirty = True
        self._streams.add(session_file)

    def force_full(self) -> None:
        """Repaint everything at the next frame (a command, a filter, a resize)."""
        self._dirty = self._forced = True

    def next_frame(self, now: float, events: bool) -> bool | None:
        """At a timer tick (`events`: engine events wait to be shown): None for no repaint,
        else whether it is a full one."""
        if not (self._dirty or events or now - self._last_full >= FULL_EVERY):
            return None
        if len(self._streams) > BUSY_STREAMS:
            self._busy_until = now + BUSY_HOLD
        busy = now < self._busy_until
        if busy and not (events or self._forced) and now - self._last_frame < PANE_EVERY_BUSY:
            return None  # only streamed text, and its last write was under 100 ms ago
        self._dirty = False
        self._streams = set()
        self._last_frame = now
        full = events or self._forced or now - self._last_full >= (FULL_EVERY_BUSY if busy else FULL_EVERY)
        if full:
            self._last_full, self._forced = now, False
        return full
