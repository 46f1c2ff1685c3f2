"""The selected issue's sessions: a title, an info line, one row of tabs and one log.

Switching issues or tabs never mounts or removes a widget: the tab row is re-rendered and the
one `SessionLog` is refilled, synchronously, in the same call that moved the cursor. So the
very next frame shows the new issue's tabs with its running (or latest) session selected; the
placeholder "No session yet" appears only for an issue that has none.

The text itself is not kept here: `session_text.SessionTexts` (the app's `texts`) owns every
session's buffer. The pane opens a session there the first time it is shown (its file is read
back in a worker), and once per frame writes the shown session's new lines in one
`write_lines` call (`write_new`).
"""

from __future__ import annotations

from typing import Any

from textual import getters, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from vik_tui.engine.engine_events import plural
from vik_tui.engine.view import Explanation, IssueView, RejectedView, RunStatus, SessionState, SessionView
from vik_tui.ui.app_api import vik_app
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.highlight import SessionHighlighter, theme_styles
from vik_tui.ui.session_text import REPLAY_LIMIT, SessionText
from vik_tui.ui.text import human_count, markup_text, mmss, one_line, retry_due
from vik_tui.ui.textual_compat import StreamLog
from vik_tui.ui.widgets.issue_table import rejected_key
from vik_tui.ui.widgets.tab_row import Tab, TabRow

STATE_STYLE = {
    SessionState.RUNNING: "$primary",
    SessionState.STARTING: "$text-muted",
    SessionState.COMPLETED: "$success",
    SessionState.FAILED: "$error",
    SessionState.CANCELLED: "$warning",
}
NO_SESSION = "No session yet for this issue."


class SessionLog(StreamLog):
    """The pane's text: plain lines, coloured by prefix at render time.

    Follows the newest line like `tail -f` until the user scrolls up, and back once they
    reach the end again. `stick()` (every refresh) re-applies it after layout changes: a Log
    alone only re-scrolls when lines are written."""

    following = True
    shows: str | None = None  # the session uuid whose text this is

    def blank(self) -> None:
        """No text until `refill()` (a replay under way), the scrollbar left as it is: hiding it
        for the few milliseconds of a replay would cost two layouts of the screen."""
        self.hold_scrollbar = True
        self.clear()

    def refill(self, lines: list[str]) -> None:
        """`clear()` then `write_lines()` as one change: the scrollbar is updated once, for the
        new text (hidden then shown again would ask for a layout on every issue switch)."""
        self.hold_scrollbar = True
        try:
            self.clear()
            if lines:
                self.write_lines(lines)
        finally:
            self.hold_scrollbar = False
        self.update_scrollbar()

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


def tab_numbers(issue: IssueView) -> dict[str, int]:
    """Session uuid → its number within its stage (1, 2, ... oldest first). Sessions are session
    files named by uuid7, so the numbers are the same after a restart and never repeat."""
    seen: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for session in issue.sessions:
        seen[session.stage] = seen.get(session.stage, 0) + 1
        numbers[session.session_uuid] = seen[session.stage]
    return numbers


def session_tab(session: SessionView, number: int, glyphs: Glyphs) -> Tab:
    state = session.state
    glyph = glyphs.running if state == SessionState.RUNNING else glyphs.for_status(state)
    return Tab(
        session.session_uuid, f"{one_line(session.stage, 40)} #{number} {glyph}", STATE_STYLE.get(state, "$text-muted")
    )


def _key(issue: IssueView | RejectedView | None) -> str | None:
    """The issue-list row key of what is shown."""
    if isinstance(issue, RejectedView):
        return rejected_key(issue)
    return issue.id if issue else None


class StagePanes(Vertical):
    """Title (border), info line, tab row and the session log of the selected issue."""

    vik = vik_app()
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
        self._info = ""
        self._why: Explanation | None = None
        self._title = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-info", markup=True)
        yield TabRow(id="session-tabs")
        log = SessionLog(max_lines=REPLAY_LIMIT, highlight=True, auto_scroll=True, id="session-log")
        yield log

    def on_mount(self) -> None:
        self.restyle()
        self.tab_row.display = False
        self.log_widget.display = False

    # -- what the screen calls --------------------------------------------------------------
    def active_session_uuid(self) -> str | None:
        return self._active

    def settled(self) -> bool:
        """The shown session's text is complete (replayed), or there is none to show."""
        text = self.vik.texts.get(self._active)
        return self._active is None or (text is not None and text.replayed)

    def sync(self, issue: IssueView | RejectedView | None, why: Explanation | None = None) -> None:
        """Show `issue` now: tabs, the session to show, the info line (led by `why` it is idle,
        when it is). Cheap when nothing changed."""
        self._issue = issue
        self._why = why
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
        glyphs = self.vik.glyphs
        self.tab_row.display = bool(sessions)
        self.tab_row.show([session_tab(s, self._numbers[s.session_uuid], glyphs) for s in sessions], self._active)
        self._show_session(issue.find_session(self._active) if isinstance(issue, IssueView) else None)
        self._show_info(issue)

    def write_new(self) -> None:
        """The shown session's lines received since the last frame, in one write."""
        texts = self.vik.texts
        text = texts.get(self._active)
        if text is None or not text.replayed or self.log_widget.shows != text.session_uuid:
            return
        lines = texts.take_new(text)
        if lines:
            self.log_widget.write_lines(lines)
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
        return session_tab(session, self._numbers.get(session_uuid, 0), self.vik.glyphs).text

    # -- the log -----------------------------------------------------------------------------
    def _show_session(self, session: SessionView | None) -> None:
        log = self.log_widget
        texts = self.vik.texts
        text = texts.get(session.session_uuid) if session else None
        target = session.session_uuid if session else None
        width = self._text_width()
        current = text is not None and (text.width == width or not text.replayed)
        if target == log.shows and (target is None or current):
            return
        log.following = True
        log.shows = texts.shown = target
        log.display = session is not None
        if session is None:
            log.refill([])
            return
        if text is not None and text.width != width and text.replayed:
            texts.drop(text)  # the pane changed width: re-read so lines wrap to the new one
            text = None
        if text is None:
            text = texts.open(session.session_uuid, session.session_file, width)
            log.blank()
            self.run_worker(self._replay(text), group="replay")
            return
        lines = texts.all_lines(text)
        log.refill(lines)
        if lines:
            log.scroll_end(animate=False, immediate=True, x_axis=False)

    async def _replay(self, text: SessionText) -> None:
        if not await self.vik.texts.replay(text):
            return  # dropped meanwhile
        if text.session_uuid == self._active and self.log_widget.shows == self._active:
            log = self.log_widget
            log.refill(self.vik.texts.all_lines(text))
            log.scroll_end(animate=False, immediate=True, x_axis=False)
            self.call_after_refresh(log.stick)

    def _text_width(self) -> int:
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
            if issue.waiting:
                title += f" · {one_line(issue.waiting, 60)}"
        if title != self._title:
            self._title = title
            self.border_title = markup_text(title)
        text = self._info_text(issue)
        if text != self._info:
            self._info = text
            self.info.update(text, layout=False)  # fixed height: no layout pass

    def _info_text(self, issue: IssueView | RejectedView | None) -> str:
        if issue is None:
            return "[$text-muted]No issue selected.[/]"
        if isinstance(issue, RejectedView):
            return f"[$warning]rejected:[/] {markup_text(one_line(issue.reason, 200))}"
        why = f"[$warning]why idle:[/] {markup_text(one_line(self._why.words, 200))}" if self._why is not None else ""
        session = issue.find_session(self._active)
        if session is None:
            return f"[$text-muted]{NO_SESSION}[/]" + (f" · {why}" if why else "")
        vik = self.vik
        state = session.state
        number = self._numbers.get(session.session_uuid, session.attempt)
        bits = [
            f"{markup_text(one_line(session.stage, 40))} #{number}",
            f"[{STATE_STYLE.get(state, '$text-muted')}]{state}[/]",
        ]
        run = issue.run_of(session.stage)
        if run and run.status == RunStatus.RETRY_WAIT and run.retry_in is not None:
            due = retry_due(run.retry_in)
            bits.append(f"[$warning]{vik.glyphs.retry} retry {'in ' + due if due[0].isdigit() else due}[/]")
        if run and run.gave_up and session is run.session:
            bits.append(f"[$error]gave up after {plural(run.attempt, 'attempt')}[/]")
        elapsed = vik.clock.seconds_since(session.started_at, session.ended_at) if session.started_at else None
        if elapsed is not None:
            bits.append(mmss(elapsed))
        if session.host:
            bits.append(f"on {markup_text(one_line(session.host, 60))}")
        if session.pid and state == SessionState.RUNNING:
            bits.append(f"pid {session.pid}" if not session.host else f"ssh pid {session.pid}")
        tokens = session.tokens
        if tokens.input or tokens.output:
            bits.append(f"tokens in {human_count(tokens.input)} out {human_count(tokens.output)}")
        if state in (SessionState.FAILED, SessionState.CANCELLED) and session.reason:
            bits.append(f"[$text-muted]{markup_text(one_line(session.reason, 160))}[/]")
        # the selected session's own line first (what the tabs select), then why the issue idles
        return " · ".join([*bits, why] if why else bits)
