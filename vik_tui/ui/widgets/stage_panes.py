"""The selected issue's sessions: a title, an info line, one row of tabs and one log.

Switching issues or tabs never mounts or removes a widget: the tab row is re-rendered and the
one `SessionLog` is refilled, synchronously, in the same call that moved the cursor. So the
very next frame shows the new issue's tabs with its running (or latest) session selected; the
placeholder "No session yet" appears only for an issue that has none.

Each session's text lives in a `SessionBuffer`. The first time a session is shown its file is
replayed through the engine (`session_records`, in a thread, never on the UI loop); live
records that arrive meanwhile are held and de-duplicated against the replay's tail
(`records.merge_replay`). Buffers of recently shown sessions are kept (a few, bounded), their
new records stored raw and formatted only when shown again, so j/k back and forth costs no
re-read. All lines reach the Log in one `write_lines` call per refresh.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from rich.cells import cell_len
from textual import getters, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.markup import escape
from textual.reactive import Reactive
from textual.widgets import Log, Static

from vik_tui.agents.events import AgentEvent
from vik_tui.engine.engine_events import plural
from vik_tui.engine.view import IssueView, RejectedView, RunStatus, SessionState, SessionView
from vik_tui.ui.app import VikApp
from vik_tui.ui.highlight import SessionHighlighter, theme_styles
from vik_tui.ui.records import format_records, merge_replay
from vik_tui.ui.text import countdown, human_count, mmss, one_line
from vik_tui.ui.widgets.issue_table import rejected_key
from vik_tui.ui.widgets.tab_row import Tab, TabRow

REPLAY_LIMIT = 5000
KEEP_BUFFERS = 8  # sessions whose text stays in memory after they were shown
STATE_STYLE = {
    SessionState.RUNNING: "$primary",
    SessionState.STARTING: "$text-muted",
    SessionState.COMPLETED: "$success",
    SessionState.FAILED: "$error",
    SessionState.CANCELLED: "$warning",
}
NO_SESSION = "No session yet for this issue."


class SessionLog(Log):
    """The pane's text: plain lines, coloured by prefix at render time.

    Follows the newest line like `tail -f` until the user scrolls up, and back once they
    reach the end again. `stick()` (every refresh) re-applies it after layout changes: a Log
    alone only re-scrolls when lines are written."""

    following = True
    shows: str | None = None  # the session uuid whose text this is
    # Every write grows the virtual height. Textual declares it `layout=True`, so each write
    # re-arranged the whole screen (every widget, every FooterKey) ten times a second while
    # an agent talks. Only this widget's scrollbar depends on it: update that, no layout
    # (a scrollbar appearing or going still asks for one, through `show_vertical_scrollbar`).
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    _refilling = False

    def watch_virtual_size(self, size: Size) -> None:
        if self.is_attached and self.container_size and not self._refilling:
            self._scroll_update(size)

    def blank(self) -> None:
        """No text until `refill()` (a replay under way), the scrollbar left as it is: hiding it
        for the few milliseconds of a replay would cost two layouts of the screen."""
        self._refilling = True
        self.clear()

    def refill(self, lines: list[str]) -> None:
        """`clear()` then `write_lines()` as one change: the scrollbar is updated once, for the
        new text (hidden then shown again would ask for a layout on every issue switch)."""
        self._refilling = True
        try:
            self.clear()
            if lines:
                self.write_lines(lines)
        finally:
            self._refilling = False
        if self.is_attached and self.container_size:
            self._scroll_update(self.virtual_size)

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        """Log measures new lines' width in a worker thread per write (20 threads a second
        while agents stream). Lines here are already wrapped or clipped to the pane
        (`format_records`), so measuring them in place is cheap and needs no thread."""
        if lines:
            self._update_maximum_width(
                updates, max(cell_len(line) if not line.isascii() else len(line) for line in lines)
            )

    def on_mouse_scroll_up(self) -> None:
        self.following = False

    def action_scroll_up(self) -> None:
        self.following = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.following = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.following = False
        super().action_scroll_home()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.size.height and new_value >= self.max_scroll_y:
            self.following = True

    def stick(self) -> None:
        if self.following and not self.is_vertical_scrollbar_grabbed and self.scroll_y < self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self) -> None:
        self.stick()


class SessionBuffer:
    """One session's formatted lines. `state`: loading (replaying its file) → live."""

    def __init__(self, session: SessionView) -> None:
        self.session_uuid = session.session_uuid
        self.session_file = session.session_file
        self.state = "loading"
        self.lines: list[str] = []
        self.width = 0
        self.held: list[AgentEvent] = []  # live records while loading, or while not shown

    def append(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        if len(self.lines) > REPLAY_LIMIT * 2:
            del self.lines[: len(self.lines) - REPLAY_LIMIT]


def tab_numbers(issue: IssueView) -> dict[str, int]:
    """Session uuid → its number within its stage (1, 2, ... oldest first). Sessions are session
    files named by uuid7, so the numbers are the same after a restart and never repeat."""
    seen: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for session in issue.sessions:
        seen[session.stage] = seen.get(session.stage, 0) + 1
        numbers[session.session_uuid] = seen[session.stage]
    return numbers


def session_tab(session: SessionView, number: int, vik: VikApp) -> Tab:
    glyphs = vik.glyphs
    state = session.state
    glyph = glyphs.running if state == SessionState.RUNNING else glyphs.for_status(state)
    return Tab(session.session_uuid, f"{session.stage} #{number} {glyph}", STATE_STYLE.get(state, "$text-muted"))


def _key(issue: IssueView | RejectedView | None) -> str | None:
    """The issue-list row key of what is shown."""
    if isinstance(issue, RejectedView):
        return rejected_key(issue)
    return issue.id if issue else None


class StagePanes(Vertical):
    """Title (border), info line, tab row and the session log of the selected issue."""

    vik = getters.app(VikApp)
    info = getters.query_one("#pane-info", Static)
    tab_row = getters.query_one("#session-tabs", TabRow)
    log_widget = getters.query_one("#session-log", SessionLog)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._issue: IssueView | RejectedView | None = None
        self._shown_issue: str | None = None
        self._active: str | None = None  # session uuid shown in the log
        self._pinned = False  # the user picked a tab: do not follow the newest session
        self._numbers: dict[str, int] = {}
        self._buffers: OrderedDict[str, SessionBuffer] = OrderedDict()  # uuid → buffer, LRU order
        self._by_file: dict[str, SessionBuffer] = {}
        self._info = ""
        self._title = ""
        self.switches = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-info", markup=True)
        yield TabRow(id="session-tabs")
        log = SessionLog(max_lines=REPLAY_LIMIT, highlight=True, auto_scroll=True, id="session-log")
        yield log

    def on_mount(self) -> None:
        self.restyle()
        self.tab_row.display = False
        self.log_widget.display = False

    # -- what the app calls ----------------------------------------------------------------
    def wants(self, session_file: str) -> bool:
        """Live records of this session are needed (it is shown, or kept to be shown again)."""
        return session_file in self._by_file

    def active_session_uuid(self) -> str | None:
        return self._active

    @property
    def active_buffer(self) -> SessionBuffer | None:
        return self._buffers.get(self._active or "")

    def settled(self) -> bool:
        """The shown session's text is complete (replayed), or there is none to show."""
        buffer = self.active_buffer
        return self._active is None or (buffer is not None and buffer.state == "live")

    def sync(self, issue: IssueView | RejectedView | None) -> None:
        """Show `issue` now: tabs, the session to show, the info line. Cheap when nothing changed."""
        self._issue = issue
        key = _key(issue)
        sessions = issue.sessions if isinstance(issue, IssueView) else ()
        if key != self._shown_issue:
            self._shown_issue = key
            self._pinned = False
            self._active = None
        known = {s.session_uuid for s in sessions}
        if self._active not in known:
            self._active, self._pinned = None, False
        if not self._pinned and isinstance(issue, IssueView):
            default = issue.default_session
            self._active = default.session_uuid if default else None
        self._numbers = tab_numbers(issue) if isinstance(issue, IssueView) else {}
        vik = self.vik
        self.tab_row.display = bool(sessions)
        self.tab_row.show([session_tab(s, self._numbers[s.session_uuid], vik) for s in sessions], self._active)
        self._show_session(issue.find_session(self._active) if isinstance(issue, IssueView) else None)
        self._show_info(issue)

    def feed(self, batches: dict[str, list[AgentEvent]]) -> None:
        """Append live records: the shown session's are formatted and written now (one write),
        the others' are held raw until they are shown again."""
        for session_file, records in batches.items():
            buffer = self._by_file.get(session_file)
            if buffer is None:
                continue
            if buffer.state == "loading":
                buffer.held.extend(records)
                continue
            if buffer.session_uuid != self._active:
                buffer.held.extend(records)
                if len(buffer.held) > REPLAY_LIMIT:  # cheaper to re-read the file when shown again
                    self._drop(buffer)
                continue
            lines = format_records(records, self.vik.clock, self.vik.glyphs, self._width())
            if lines:
                buffer.append(lines)
                self.log_widget.write_lines(lines)
        buffer = self.active_buffer
        if buffer is not None and buffer.state == "live":
            self.log_widget.stick()

    def cycle(self, step: int) -> None:
        """tab / shift+tab: next or previous session of the issue, wrapping around."""
        issue = self._issue
        if not isinstance(issue, IssueView) or len(issue.sessions) < 2:
            return
        order = [s.session_uuid for s in issue.sessions]
        current = order.index(self._active) if self._active in order else len(order) - 1
        self.select(order[(current + step) % len(order)])

    def select(self, session_uuid: str) -> None:
        issue = self._issue
        if not isinstance(issue, IssueView) or issue.find_session(session_uuid) is None:
            return
        self._active, self._pinned = session_uuid, True
        self.sync(issue)
        self.vik.bindings_may_change()

    @on(TabRow.Clicked)
    def _tab_clicked(self, event: TabRow.Clicked) -> None:
        event.stop()
        self.select(event.key)

    def restyle(self) -> None:
        self.log_widget.highlighter = SessionHighlighter(theme_styles(self.app.theme_variables), self.vik.glyphs)
        self.log_widget.refresh()

    def tab_label(self, session_uuid: str) -> str:
        """The plain text of a session's tab (`plan #2 ✗`), "" when it has none."""
        issue = self._issue
        session = issue.find_session(session_uuid) if isinstance(issue, IssueView) else None
        if session is None:
            return ""
        return session_tab(session, self._numbers.get(session_uuid, 0), self.vik).text

    # -- the log -----------------------------------------------------------------------------
    def _show_session(self, session: SessionView | None) -> None:
        log = self.log_widget
        buffer = self._buffers.get(session.session_uuid) if session else None
        target = session.session_uuid if session else None
        if target == log.shows and (
            target is None or (buffer is not None and (buffer.width == self._width() or buffer.state == "loading"))
        ):
            return
        self.switches += 1
        log.following = True
        log.shows = target
        log.display = session is not None
        if session is None:
            log.refill([])
            return
        if buffer is not None and buffer.width != self._width() and buffer.state == "live":
            self._drop(buffer)  # the pane changed width: re-read so lines wrap to the new one
            buffer = None
        if buffer is None:
            buffer = self._new_buffer(session)
            log.blank()
            return
        self._buffers.move_to_end(buffer.session_uuid)
        if buffer.state == "live" and buffer.held:
            held, buffer.held = buffer.held, []
            buffer.append(format_records(held, self.vik.clock, self.vik.glyphs, buffer.width))
        log.refill(buffer.lines[-REPLAY_LIMIT:])
        if buffer.lines:
            log.scroll_end(animate=False, immediate=True, x_axis=False)

    def _new_buffer(self, session: SessionView) -> SessionBuffer:
        buffer = SessionBuffer(session)
        buffer.width = self._width()
        self._buffers[buffer.session_uuid] = buffer
        self._by_file[buffer.session_file] = buffer
        while len(self._buffers) > KEEP_BUFFERS:
            oldest = next(iter(self._buffers.values()))
            if oldest is buffer:
                break
            self._drop(oldest)
        self.run_worker(self._replay(buffer), group="replay")
        return buffer

    def _drop(self, buffer: SessionBuffer) -> None:
        self._buffers.pop(buffer.session_uuid, None)
        if self._by_file.get(buffer.session_file) is buffer:
            del self._by_file[buffer.session_file]

    async def _replay(self, buffer: SessionBuffer) -> None:
        vik = self.vik
        engine, clock, glyphs, width = vik.engine, vik.clock, vik.glyphs, buffer.width

        try:
            records = await engine.session_records(buffer.session_file, limit=REPLAY_LIMIT)
            lines = await asyncio.to_thread(format_records, records, clock, glyphs, width)
        except Exception as exc:  # an unreadable file must not take the screen down
            records, lines = [], [f"{clock.hhmmss(None)}  [error] cannot replay the session: {exc}"]
        if self._buffers.get(buffer.session_uuid) is not buffer:
            return  # dropped meanwhile
        # live records not flushed yet may already be in the file as well: merge them too
        extra = merge_replay(records, buffer.held + vik.take_pending(buffer.session_file))
        buffer.held = []
        lines += format_records(extra, clock, glyphs, width)
        buffer.lines = lines
        buffer.state = "live"
        if buffer.session_uuid == self._active and self.log_widget.shows == self._active:
            log = self.log_widget
            log.refill(lines)
            log.scroll_end(animate=False, immediate=True, x_axis=False)
            self.call_after_refresh(log.stick)

    def _width(self) -> int:
        """Columns a line may use: this container's inner width less the Log's padding, a
        vertical scrollbar and a column of slack (an exact fit still shows a horizontal bar)."""
        width = self.content_region.width - 2 - 1 - 1  # padding, scrollbar, one column of slack
        return width if width >= 34 else 100 if width <= 0 else 34

    # -- the info line ----------------------------------------------------------------------
    def _show_info(self, issue: IssueView | RejectedView | None) -> None:
        if issue is None:
            title = "Sessions"
        elif isinstance(issue, RejectedView):
            title = f"{one_line(str(issue.id or f'#{issue.index}'), 30)} · rejected"
        else:
            title = f"{one_line(issue.id, 30)} {one_line(issue.title, 80)} · {one_line(issue.state, 30)}"
        if title != self._title:
            self._title = title
            self.border_title = escape(title)
        text = self._info_text(issue)
        if text != self._info:
            self._info = text
            self.info.update(text, layout=False)  # fixed height: no layout pass

    def _info_text(self, issue: IssueView | RejectedView | None) -> str:
        if issue is None:
            return "[$text-muted]No issue selected.[/]"
        if isinstance(issue, RejectedView):
            return f"[$warning]rejected:[/] {escape(one_line(issue.reason, 200))}"
        session = issue.find_session(self._active)
        if session is None:
            return f"[$text-muted]{NO_SESSION}[/]"
        vik = self.vik
        state = session.state
        number = self._numbers.get(session.session_uuid, session.attempt)
        bits = [f"{escape(session.stage)} #{number}", f"[{STATE_STYLE.get(state, '$text-muted')}]{state}[/]"]
        run = issue.run_of(session.stage)
        if run and run.status == RunStatus.RETRY_WAIT and run.retry_in is not None:
            bits.append(f"[$warning]{vik.glyphs.retry} retry in {countdown(run.retry_in)}[/]")
        if run and run.gave_up and session is run.session:
            bits.append(f"[$error]gave up after {plural(run.attempt, 'attempt')}[/]")
        elapsed = vik.clock.seconds_since(session.started_at, session.ended_at) if session.started_at else None
        if elapsed is not None:
            bits.append(mmss(elapsed))
        if session.host:
            bits.append(f"on {escape(session.host)}")
        if session.pid and state == SessionState.RUNNING:
            bits.append(f"pid {session.pid}" if not session.host else f"ssh pid {session.pid}")
        tokens = session.tokens
        if tokens.input or tokens.output:
            bits.append(f"tokens in {human_count(tokens.input)} out {human_count(tokens.output)}")
        if state in (SessionState.FAILED, SessionState.CANCELLED) and session.reason:
            bits.append(f"[$text-muted]{escape(one_line(session.reason, 160))}[/]")
        return " · ".join(bits)
