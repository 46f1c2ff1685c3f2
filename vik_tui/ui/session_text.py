"""The text of agent sessions on screen: one buffer per session, all owned by `SessionTexts`.

Records flow one way. The app hands every streamed batch to `receive()` (the engine's callback:
no widget is touched there); the stage pane, once per frame, takes the shown session's new
lines with `take_new()` and writes them. A session is kept only once the pane asked for it
(`open()`): its file is read back first (`replay()`, in a thread), and records that arrived
meanwhile are merged against the replay's tail (`records.merge_replay`). Sessions shown
recently stay kept (up to `KEEP` of them while they hold under `KEEP_LINES` lines, at least
`KEEP_MIN`; the least recently opened dropped first), their new records stored raw and
formatted only when shown again, so j/k up and down a list of running agents re-reads no file
(a re-read is on the key's path: the pane waits for it).

Bounded: a session keeps at most `2 * REPLAY_LIMIT` lines (cut back to `REPLAY_LIMIT`), and
one not on screen that gathers more than `HIDDEN_LIMIT` raw records is dropped (re-reading its
file when it is shown again is cheaper).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from vik_tui.agents.events import AgentEvent
from vik_tui.ui.clock import Clock
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.records import format_records, merge_replay
from vik_tui.ui.text import one_line

REPLAY_LIMIT = 5000
KEEP = 64  # sessions whose text stays in memory after they were shown, at most ...
KEEP_LINES = 50_000  # ... while all of them hold fewer lines and raw records than this (~10 MiB)
KEEP_MIN = 8  # ... and this many whatever their size
HIDDEN_LIMIT = 1000  # raw records a session not on screen gathers before it is dropped
INLINE_FORMAT = 500  # a replay of this many records is formatted on the loop (~2 ms), not in a thread

ReadRecords = Callable[[str, int], Awaitable[list[AgentEvent]]]  # (session file, limit) -> its last records


class SessionText:
    """One session's text, formatted `width` columns wide. Until `replayed`, only records."""

    def __init__(self, session_uuid: str, session_file: str, width: int) -> None:
        self.session_uuid = session_uuid
        self.session_file = session_file
        self.width = width
        self.replayed = False
        self.lines: list[str] = []
        self._unformatted: list[AgentEvent] = []  # arrived during the replay, or not formatted yet
        # streamed batches not looked at yet: a reader process's batch is decoded from its lines
        # only when read, so a kept session that is not on screen costs no decoding
        self._batches: list[Sequence[AgentEvent]] = []
        self.waiting = 0  # records in both
        self.errors_shown: set[str] = set()  # `format_records`: the outcome line does not repeat them

    @property
    def unformatted(self) -> list[AgentEvent]:
        """The records received and not formatted yet, in order."""
        if self._batches:
            for batch in self._batches:
                self._unformatted.extend(batch)
            self._batches.clear()
        return self._unformatted

    @unformatted.setter
    def unformatted(self, records: list[AgentEvent]) -> None:
        self._unformatted = records
        self._batches.clear()
        self.waiting = len(records)

    def receive(self, records: Sequence[AgentEvent]) -> None:
        self._batches.append(records)
        self.waiting += len(records)

    def append(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        if len(self.lines) > REPLAY_LIMIT * 2:
            del self.lines[: len(self.lines) - REPLAY_LIMIT]


class SessionTexts:
    """The owner of every session buffer. `read` is the engine's (async) `session_records`."""

    def __init__(self, read: ReadRecords, clock: Clock, glyphs: Glyphs) -> None:
        self._read = read
        self._clock = clock
        self._glyphs = glyphs
        self._texts: OrderedDict[str, SessionText] = OrderedDict()  # by session file, LRU order
        self._by_uuid: dict[str, SessionText] = {}
        self.shown: str | None = None  # the session uuid on screen (set by the pane)

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, session_uuid: str | None) -> SessionText | None:
        return self._by_uuid.get(session_uuid or "")

    # -- in: the engine's records --------------------------------------------------------------
    def receive(self, session_file: str, records: Sequence[AgentEvent]) -> None:
        """A streamed batch, kept only for a session the pane opened. The shown session is
        never dropped for its size: its records are taken every frame."""
        text = self._texts.get(session_file)
        if text is None:
            return  # read from its file if it is ever shown
        text.receive(records)
        if text.waiting > HIDDEN_LIMIT and text.session_uuid != self.shown:
            self.drop(text)

    # -- out: lines for the pane ---------------------------------------------------------------
    def open(self, session_uuid: str, session_file: str, width: int) -> SessionText:
        """Start keeping a session (not replayed yet: run `replay()`); the oldest ones go."""
        old = self._texts.get(session_file)
        if old is not None:
            self.drop(old)
        text = SessionText(session_uuid, session_file, width)
        self._texts[session_file] = text
        self._by_uuid[session_uuid] = text
        while len(self._texts) > KEEP_MIN and (len(self._texts) > KEEP or self._held() > KEEP_LINES):
            self.drop(next(iter(self._texts.values())))
        return text

    def _held(self) -> int:
        """Lines and raw records of every kept session (what memory they take, roughly)."""
        return sum(len(text.lines) + text.waiting for text in self._texts.values())

    def all_lines(self, text: SessionText) -> list[str]:
        """Every line of a replayed session, its unformatted records formatted first; marks it
        the most recently shown."""
        self.take_new(text)
        self._texts.move_to_end(text.session_file)
        return text.lines[-REPLAY_LIMIT:]

    def take_new(self, text: SessionText) -> list[str]:
        """The lines of the records received since last asked (none before the replay)."""
        if not text.replayed or not text.waiting:
            return []
        records, text.unformatted = text.unformatted, []
        lines = format_records(records, self._clock, self._glyphs, text.width, errors_shown=text.errors_shown)
        text.append(lines)
        return lines

    def kept(self, text: SessionText) -> bool:
        return self._texts.get(text.session_file) is text

    def drop(self, text: SessionText) -> None:
        if self._texts.get(text.session_file) is text:
            del self._texts[text.session_file]
        if self._by_uuid.get(text.session_uuid) is text:
            del self._by_uuid[text.session_uuid]

    async def replay(self, text: SessionText) -> bool:
        """Read the session's file back through the engine (formatted in a thread), then merge
        what arrived meanwhile. False when the session was dropped meanwhile (no use for it)."""
        clock, glyphs, width = self._clock, self._glyphs, text.width
        try:
            records = await self._read(text.session_file, REPLAY_LIMIT)
            shown = text.errors_shown
            if len(records) <= INLINE_FORMAT:  # a thread would wait for the busy loop's GIL twice
                lines = format_records(records, clock, glyphs, width, False, shown)
            else:
                lines = await asyncio.to_thread(format_records, records, clock, glyphs, width, False, shown)
        except Exception as exc:  # an unreadable file must not take the screen down
            records, lines = [], [f"{clock.hhmmss(None)}  [error] cannot replay the session: {one_line(str(exc))}"]
        if not self.kept(text):
            return False
        # live records may already be in the file as well: only the ones after its tail count
        text.unformatted = merge_replay(records, text.unformatted)
        text.lines = lines
        text.replayed = True
        self.take_new(text)
        return True
