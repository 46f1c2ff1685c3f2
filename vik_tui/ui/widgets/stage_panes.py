"""Session panes of the selected issue: one tab per session (every attempt of every stage).

A pane fills lazily: the first time it is shown it replays the session file through the
engine (`session_records`, in a thread, never on the UI loop), then appends live records.
Live records that arrive while the replay reads are buffered and de-duplicated against the
replay's tail (`records.merge_replay`). All lines reach the Log in one `write_lines` call per
refresh, never one call per line.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.cells import cell_len
from textual import getters, on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Log, Static, TabbedContent, TabPane

from vik_tui.agents.events import AgentEvent
from vik_tui.engine.view import IssueView, RejectedView, RunStatus, SessionState, SessionView
from vik_tui.ui.app import VikApp
from vik_tui.ui.highlight import SessionHighlighter, theme_styles
from vik_tui.ui.records import format_records, merge_replay
from vik_tui.ui.text import countdown, human_count, mmss, one_line
from vik_tui.ui.widgets.issue_table import rejected_key

REPLAY_LIMIT = 5000
STATE_STYLE = {
    SessionState.RUNNING: "$primary",
    SessionState.STARTING: "$text-muted",
    SessionState.COMPLETED: "$success",
    SessionState.FAILED: "$error",
    SessionState.CANCELLED: "$warning",
}


def pane_id(session_uuid: str) -> str:
    return f"s-{session_uuid}"


class SessionLog(Log):
    """A pane's text: plain lines, coloured by prefix at render time.

    Follows the newest line like `tail -f` until the user scrolls up, and back once they
    reach the end again. `stick()` (every refresh) re-applies it after layout changes: a Log
    alone only re-scrolls when lines are written."""

    following = True

    @work(thread=True, exit_on_error=False)
    def _update_size(self, updates: int, lines: list[str]) -> None:
        """Log's width worker, made safe: a pane closed (issue switched) while the thread ran
        has no app any more, and Log's own worker would then take the whole app down."""
        if not lines:
            return
        try:
            app = self.app
        except RuntimeError:  # textual's NoActiveAppError: this Log left the DOM
            return
        _process_line = self._process_line
        max_length = max(cell_len(_process_line(line)) for line in lines)
        with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
            app.call_from_thread(self._update_maximum_width, updates, max_length)

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


class SessionPane(TabPane):
    """One session. `state`: unloaded (never shown) → loading (replaying) → live."""

    def __init__(self, session: SessionView, label: str) -> None:
        super().__init__(label, id=pane_id(session.session_uuid))
        self.session_uuid = session.session_uuid
        self.session_file = session.session_file
        self.label_markup = label
        self.state = "unloaded"
        self.live: list[AgentEvent] = []
        self.log_widget = SessionLog(max_lines=REPLAY_LIMIT, highlight=True, auto_scroll=True)

    def compose(self) -> ComposeResult:
        yield self.log_widget


def session_label(session: SessionView, vik: VikApp) -> str:
    glyphs = vik.glyphs
    state = session.state
    glyph = glyphs.running if state == SessionState.RUNNING else glyphs.for_status(state)
    style = STATE_STYLE.get(state, "$text-muted")
    return f"{escape(session.stage)} #{session.attempt} [{style}]{glyph}[/]"


def _key(issue: IssueView | RejectedView | None) -> str | None:
    """The issue-list row key of what is shown."""
    if isinstance(issue, RejectedView):
        return rejected_key(issue)
    return issue.id if issue else None


class StagePanes(Vertical):
    """Title line, a TabbedContent of SessionPanes, and an info line about the active one."""

    vik = getters.app(VikApp)
    tabbed = getters.query_one("#sessions", TabbedContent)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._issue: IssueView | RejectedView | None = None
        self._shown_issue: str | None = None
        self._panes: dict[str, SessionPane] = {}  # session_uuid → pane
        self._by_file: dict[str, SessionPane] = {}
        self._busy = False
        self._again = False
        self._info = ""
        self._title = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-info", markup=True)
        yield TabbedContent(id="sessions")

    # -- what the app calls ----------------------------------------------------------------
    def wants(self, session_file: str) -> bool:
        """Live records of this session are needed now (its pane is loading or live)."""
        pane = self._by_file.get(session_file)
        return pane is not None and pane.state != "unloaded"

    def active_session_uuid(self) -> str | None:
        if self._shown_issue is None or not self._panes:
            return None
        active = self.tabbed.active
        return active[2:] if active.startswith("s-") else None

    def sync(self, issue: IssueView | RejectedView | None) -> None:
        """Every refresh: follow the selected issue; add panes for new sessions; relabel."""
        self._issue = issue
        sessions = issue.sessions if isinstance(issue, IssueView) else ()
        if _key(issue) != self._shown_issue or any(s.session_uuid not in self._panes for s in sessions):
            self._schedule()
        for session in sessions:
            pane = self._panes.get(session.session_uuid)
            if pane is not None:
                label = session_label(session, self.vik)
                if label != pane.label_markup and pane.is_attached:
                    try:
                        self.tabbed.get_tab(pane).label = label
                    except Exception:  # its tab is still being mounted: next refresh
                        continue
                    pane.label_markup = label
        self._show_info(issue)
        active = self._panes.get(self.active_session_uuid() or "")
        if active is not None and active.state == "live":
            active.log_widget.stick()

    def feed(self, batches: dict[str, list[AgentEvent]]) -> None:
        """Append live records: buffered while a pane replays, else one write per pane."""
        for session_file, records in batches.items():
            pane = self._by_file.get(session_file)
            if pane is None or not pane.is_attached:
                continue
            if pane.state == "loading":
                pane.live.extend(records)
            elif pane.state == "live":
                lines = format_records(records, self.vik.clock, self.vik.glyphs, self._width(pane))
                if lines:
                    pane.log_widget.write_lines(lines)

    def cycle(self, step: int) -> None:
        """tab / shift+tab: next or previous pane, wrapping around."""
        order = list(self._panes)
        current = self.active_session_uuid()
        if len(order) < 2 or current not in order:
            return
        target = order[(order.index(current) + step) % len(order)]
        self.tabbed.active = pane_id(target)

    def restyle(self) -> None:
        styles = theme_styles(self.app.theme_variables)
        for pane in self._panes.values():
            pane.log_widget.highlighter = SessionHighlighter(styles, self.vik.glyphs)
            pane.log_widget.refresh()

    # -- structure (async: mounting and removing panes) ------------------------------------
    def _schedule(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        self.run_worker(self._reconcile(), group="panes")

    async def _reconcile(self) -> None:
        try:
            while True:
                self._again = False
                await self._apply(self._issue)
                if not self._again:
                    break
        finally:
            self._busy = False

    async def _apply(self, issue: IssueView | RejectedView | None) -> None:
        tabbed = self.tabbed
        issue_id = _key(issue)
        sessions = issue.sessions if isinstance(issue, IssueView) else ()
        if issue_id != self._shown_issue:
            self._panes.clear()
            self._by_file.clear()
            await tabbed.clear_panes()
            self._shown_issue = issue_id
            follow = True
        else:
            newest = list(self._panes)[-1] if self._panes else None
            follow = newest is None or self.active_session_uuid() == newest
        styles = theme_styles(self.app.theme_variables)
        added = False
        for session in sessions:
            if session.session_uuid in self._panes:
                continue
            pane = SessionPane(session, session_label(session, self.vik))
            pane.log_widget.highlighter = SessionHighlighter(styles, self.vik.glyphs)
            self._panes[pane.session_uuid] = pane
            self._by_file[pane.session_file] = pane
            await tabbed.add_pane(pane)
            added = True
        if added and follow and isinstance(issue, IssueView):
            target = issue.default_session
            if target is not None:
                tabbed.active = pane_id(target.session_uuid)
        tabbed.display = bool(sessions)
        active = self.active_session_uuid()
        if active in self._panes:
            self._load(self._panes[active])
        self._show_info(self._issue)
        self.vik.bindings_may_change()
        self.call_after_refresh(self._place_underline)

    def _place_underline(self) -> None:
        """Tabs added and activated before their first layout can leave the underline at
        column 0 (a Textual 8.2 race); re-place it once everything has a size."""
        for tabs in self.tabbed.query("ContentTabs"):
            highlight = getattr(tabs, "_highlight_active", None)
            if callable(highlight):
                highlight(animate=False)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        event.stop()
        pane = event.pane
        if isinstance(pane, SessionPane):
            self._load(pane)
        self._show_info(self._issue)
        self.vik.bindings_may_change()
        self.call_after_refresh(self._place_underline)

    # -- replay -----------------------------------------------------------------------------
    def _load(self, pane: SessionPane) -> None:
        if pane.state == "unloaded":
            pane.state = "loading"  # live records are buffered from now on
            # after the next refresh the pane is laid out, so lines are wrapped to its real width
            self.call_after_refresh(lambda: self.run_worker(self._replay(pane), group="replay"))

    async def _replay(self, pane: SessionPane) -> None:
        vik = self.vik
        engine, clock, glyphs, width = vik.engine, vik.clock, vik.glyphs, self._width(pane)

        def read() -> tuple[list[AgentEvent], list[str]]:
            records = engine.session_records(pane.session_file, limit=REPLAY_LIMIT)
            return records, format_records(records, clock, glyphs, width)

        try:
            records, lines = await asyncio.to_thread(read)
        except Exception as exc:  # an unreadable file must not take the screen down
            records, lines = [], [f"{clock.hhmmss(None)}  [error] cannot replay the session: {exc}"]
        if not pane.is_attached:
            return
        # live records not flushed yet may already be in the file as well: merge them too
        extra = merge_replay(records, pane.live + vik.take_pending(pane.session_file))
        pane.live = []
        lines += format_records(extra, clock, glyphs, width)
        pane.state = "live"
        if lines:
            pane.log_widget.write_lines(lines)
            self.call_after_refresh(pane.log_widget.stick)

    def _width(self, _pane: SessionPane) -> int:
        """Columns a line may use: this container's inner width less the Log's padding, a
        vertical scrollbar and a column of slack (an exact fit still shows a horizontal bar).
        Taken from the container, not the Log, so it does not depend on
        whether the Log is laid out yet or shows a scrollbar at this moment."""
        width = self.content_region.width - 2 - 1 - 1  # padding, scrollbar, one column of slack
        return width if width >= 40 else 100 if width <= 0 else 40

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
            self.query_one("#pane-info", Static).update(text, layout=False)  # fixed height: no layout pass

    def _info_text(self, issue: IssueView | RejectedView | None) -> str:
        if issue is None:
            return "[$text-muted]No issue selected.[/]"
        if isinstance(issue, RejectedView):
            return f"[$warning]rejected:[/] {escape(one_line(issue.reason, 200))}"
        session = issue.find_session(self.active_session_uuid())
        if session is None:
            return "[$text-muted]No session yet for this issue.[/]"
        vik = self.vik
        state = session.state
        bits = [f"{escape(session.stage)} #{session.attempt}", f"[{STATE_STYLE.get(state, '$text-muted')}]{state}[/]"]
        run = issue.run_of(session.stage)
        if run and run.status == RunStatus.RETRY_WAIT and run.retry_in is not None:
            bits.append(f"[$warning]{vik.glyphs.retry} retry #{run.attempt + 1} in {countdown(run.retry_in)}[/]")
        elapsed = vik.clock.seconds_since(session.started_at, session.ended_at) if session.started_at else None
        if elapsed is not None:
            bits.append(mmss(elapsed))
        if session.pid and state == SessionState.RUNNING:
            bits.append(f"pid {session.pid}")
        tokens = session.tokens
        if tokens.input or tokens.output:
            bits.append(f"tokens in {human_count(tokens.input)} out {human_count(tokens.output)}")
        if state in (SessionState.FAILED, SessionState.CANCELLED) and session.reason:
            bits.append(f"[$text-muted]{escape(one_line(session.reason, 160))}[/]")
        return " · ".join(bits)
