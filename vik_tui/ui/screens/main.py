"""The main screen: status line, issue list, session panes, engine log, footer.

It owns the view state (selection, filter, log visibility) and the user commands. The app
feeds it a fresh engine snapshot plus the log lines of a refresh via `apply()`; the session
pane takes its new text from the app's `texts`. What it reads of the engine is the view
contract of docs/architecture.md §6; of the app, the `app_api.Vik` contract.
"""

from __future__ import annotations

import asyncio
import shlex
import socket
from typing import ClassVar, Literal

from textual import getters, on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import BindingType
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from vik_tui.engine.view import (
    EngineView,
    Explanation,
    IntakeStatus,
    IssueView,
    Refused,
    RejectedView,
    RunStatus,
    RunView,
    SessionView,
    Terminal,
)
from vik_tui.ui.app_api import vik_app
from vik_tui.ui.engine_api import Attached, explain, inside_tmux, open_in_tmux, run_attached
from vik_tui.ui.keys import bindings
from vik_tui.ui.screens.confirm import ConfirmScreen
from vik_tui.ui.widgets.event_log import EventLog
from vik_tui.ui.widgets.issue_table import REJECTED_PREFIX, IssueTable
from vik_tui.ui.widgets.stage_panes import StagePanes
from vik_tui.ui.widgets.status_line import StatusLine

LOG_MIN_HEIGHT = 30  # below this many rows the log pane starts collapsed
ENGINE_ACTIONS = (
    "cancel",
    "retry",
    "shell",
    "diff",
    "open_session",
    "pause",
    "resume",
    "poll_now",
    "drain",
    "read",
    "take_over",
    "stop_supervisor",
)


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012 - Textual declares it per instance

    vik = vik_app()
    table = getters.query_one(IssueTable)
    filter_box = getters.query_one("#filter", Input)

    def __init__(self) -> None:
        super().__init__(id="main")
        self.view: EngineView | None = None
        self.selected: str | None = None  # issue id (or rejected-row key) under the cursor
        self.needle = ""
        self.attention = False  # `!`: only issues that need attention
        self.backlog = False  # `b`: list the backlog too
        self._backlog_text = ""
        self._binding_state: tuple[object, ...] = ()
        self._footer_due = False  # a footer refresh waits for the next screen refresh
        self.ready = False  # composed and mounted: apply() may run
        self._panes_ref: StagePanes | None = None

    @property
    def panes(self) -> StagePanes:
        """Cached: every frame and every key uses it, a DOM query each time adds up."""
        cached = self._panes_ref
        if cached is None or not cached.is_attached:
            cached = self._panes_ref = self.query_one(StagePanes)
        return cached

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Container(id="body"):
            with Vertical(id="issues"):
                filter_input = Input(placeholder="filter: id, title or state (esc clears)", id="filter")
                filter_input.cursor_blink = not self.vik.clock.frozen
                yield filter_input
                yield IssueTable(id="issue-table")
                yield Static("", id="backlog-line", markup=True)
            yield StagePanes(id="panes")
        yield EventLog(id="log")
        yield Footer(id="footer")

    def on_mount(self) -> None:
        self.query_one("#issues").border_title = "Issues"
        self.query_one("#log").border_title = "Log"
        self.set_class(self.app.size.height >= LOG_MIN_HEIGHT, "-show-log")
        self.filter_box.display = False
        self.table.focus()
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.ready = True

    def _theme_changed(self, _theme: object) -> None:
        self.table.refresh_styles()
        self.panes.restyle()
        self.query_one(EventLog).restyle()

    # -- refresh (called by the app's coalescing timer) ------------------------------------
    def apply(
        self,
        view: EngineView,
        log_lines: list[tuple[str, str]],
        full: bool = True,
    ) -> None:
        """Repaint from a snapshot. `full=False` (a frame with only streamed records) writes the
        pane's new text and leaves the header and the table alone: re-rendering 20 table rows on every
        frame while agents stream costs more than everything else the UI does."""
        self.view = view
        vik = self.vik
        table = self.table
        if full:
            self.query_one(StatusLine).show(view, vik.glyphs, note=vik.header_note(), rate=vik.throughput.rate())
            hidden = table.show(
                view,
                self.needle,
                vik.clock,
                vik.glyphs,
                self.selected,
                attention=self.attention,
                backlog=self.backlog,
            )
            self._show_backlog_line(view, hidden)
        if self.selected is None or self.selected not in table.keys:
            self.selected = table.current_key()
        panes = self.panes
        panes.sync(*self._selected_and_why())
        panes.write_new()
        self.query_one(EventLog).add(log_lines)
        self.bindings_may_change()

    def _show_backlog_line(self, view: EngineView, hidden: int) -> None:
        """One line under the list: the backlog summarised, and the filter in force."""
        bits = []
        if self.attention and not view.attention_count:  # an empty list must not look like no issues
            bits.append(
                f"[$error b]! filter on:[/] no issue needs attention · [$text-muted]! shows all {len(view.issues):,}[/]"
            )
        elif self.attention:
            bits.append(f"[$error b]! needs attention[/] ({view.attention_count}) · [$text-muted]! shows all[/]")
        if hidden:
            bits.append(f"backlog {hidden:,} [$text-muted]· b lists them[/]")
        elif self.backlog and view.backlog_count:
            bits.append(f"backlog {view.backlog_count:,} listed [$text-muted]· b hides them[/]")
        text = "   ".join(bits)
        if text != self._backlog_text:
            self._backlog_text = text
            line = self.query_one("#backlog-line", Static)
            line.update(text)
            line.display = bool(text)

    def _selected_issue(self) -> IssueView | RejectedView | None:
        key, view = self.selected, self.view
        if key is None or view is None:
            return None
        if key.startswith(REJECTED_PREFIX):
            index = key[len(REJECTED_PREFIX) :].partition(":")[0]
            return next((item for item in view.rejected if str(item.index) == index), None)
        return view.find_issue(key)

    def _selected_and_why(self) -> tuple[IssueView | RejectedView | None, Explanation | None]:
        """The selected issue and, when none of its stages is active, why (the pane says it)."""
        issue, snap = self._selected_issue(), self.view
        if not isinstance(issue, IssueView) or snap is None or any(run.status.active for run in issue.runs):
            return issue, None
        return issue, explain(snap, issue.id)

    @on(DataTable.RowHighlighted, "#issue-table")
    def _row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._follow_cursor()  # a click or the table's own keys; j/k have done it already

    def _follow_cursor(self) -> None:
        key = self.table.current_key()  # the cursor now, not when a message was sent
        if key != self.selected:
            self.selected = key
            # the pane and the keys follow now; nothing else on screen depends on the cursor,
            # so no new snapshot, table pass or header for it (they cost most of a key press)
            self.panes.sync(*self._selected_and_why())
            self.bindings_may_change()

    # -- what commands apply to -------------------------------------------------------------
    def target(self) -> tuple[IssueView | None, RunView | None, SessionView | None]:
        """(issue, stage run, session): the active pane's session, else the first active stage."""
        issue = self._selected_issue()
        if not isinstance(issue, IssueView):
            return None, None, None
        session = issue.find_session(self.panes.active_session_uuid())
        if session is not None:
            return issue, issue.run_of(session.stage), session
        run = issue.first_active_run
        return issue, run, run.session if run else None

    def bindings_may_change(self) -> None:
        """refresh_bindings() only when what the keys would do changed. Each refresh recomposes
        the footer (a widget per key, then a layout of the screen), so the state compared is
        exactly what `check_action` answers: moving between two running issues, or the intake
        going from polling to idle, changes nothing there.

        It runs after the next screen refresh, not now: recomposing the footer and the layout
        it asks for took 30-40 ms of CPU, and a j/k between a running and a finished issue
        showed the new pane only after them. Keys are checked when pressed (`check_action`), so
        a footer a frame late never lets a key do what it should not."""
        state = tuple(self.check_action(action, ()) for action in ENGINE_ACTIONS)
        if state != self._binding_state:
            self._binding_state = state
            if not self._footer_due:
                self._footer_due = True
                self.call_after_refresh(self._refresh_footer)

    def _refresh_footer(self) -> None:
        self._footer_due = False
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cursor_down", "cursor_up"):  # priority keys: typed into the filter box
            return not isinstance(self.focused, Input)
        if action not in ENGINE_ACTIONS:
            return True
        if action == "stop_supervisor":  # attached only: in-process, q is the one way out
            return (True if not self.vik.quitting else None) if self.vik.attached else False
        issue, run, session = self.target()
        # a drain is undone by resume: `p` offers it while draining
        paused = self.view is not None and (self.view.intake.paused or self.view.draining)
        intake_status = self.view.intake.status if self.view else None
        live = not self.vik.engine_done and not self.vik.quitting
        if action == "cancel":  # on a finished stage `c` says why it does nothing
            return True if live and run is not None else None
        if action == "retry":
            return True if live and run is not None and not run.status.active else None
        if action in ("shell", "diff"):
            return True if issue is not None else None
        if action in ("open_session", "read", "take_over"):
            return True if session is not None else None
        if action == "pause":
            return (True if live and intake_status != IntakeStatus.DONE else None) if not paused else False
        if action == "resume":
            return (True if live else None) if paused else False
        if action == "drain":
            return True if live and self.view is not None and not self.view.draining else None
        if action == "poll_now":  # while paused `f` says so instead of doing nothing
            stopped = intake_status in (IntakeStatus.DONE, IntakeStatus.STOPPING)
            return True if live and not stopped else None
        return True

    # -- actions ----------------------------------------------------------------------------
    def action_cancel(self) -> None:
        issue, run, _session = self.target()
        if issue is None or run is None:
            return
        issue_id, stage = issue.id, run.stage
        if not run.status.cancellable:
            self.notify(f"{issue_id}/{stage} is not running ({run.status}); r runs it again", title="nothing to cancel")
            return
        what = "the pending retry of" if run.status == RunStatus.RETRY_WAIT else "the running"

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(self.vik.engine.cancel(issue_id, stage), title=f"{issue_id}/{stage}")
                self.vik.request_refresh()

        self.app.push_screen(
            ConfirmScreen(f"Cancel {what} stage {stage} of {issue_id}?", yes="Cancel it", no="Keep"), answered
        )

    def action_retry(self) -> None:
        issue, run, _session = self.target()
        if issue is None or run is None:
            return
        self.notify(self.vik.engine.retry(issue.id, run.stage), title=f"{issue.id}/{run.stage}")
        self.vik.request_refresh()

    async def action_shell(self) -> None:
        issue, _run, _session = self.target()
        if issue is None:
            return
        plan = await self.vik.engine.shell_plan(issue.id)
        if isinstance(plan, Refused):
            self.notify(plan.reason, severity="warning")
            return
        if self._shown_elsewhere(plan, "shell"):
            return
        if inside_tmux():
            ok, message = await asyncio.to_thread(open_in_tmux, plan)
            self.notify(message, severity="information" if ok else "error")
            return
        try:
            with self.app.suspend():
                run_attached(plan)  # synchronous on purpose: never await while suspended
        except SuspendNotSupported:
            self._show_command(plan, "shell", "no_suspend")

    def action_diff(self) -> None:
        issue, _run, _session = self.target()
        if issue is None:
            return
        where = f"on {issue.host}" if issue.host else self.vik.engine.workspace_path(issue.id)
        if isinstance(where, Refused):  # the engine refuses to name a path for it
            self.notify(where.reason, severity="error")
            return
        from vik_tui.ui.screens.diff import DiffScreen  # screens opened on demand: not at start-up

        self.app.push_screen(DiffScreen(issue.id, where, self.vik.engine.workspace_diff))

    def action_open_session(self) -> None:
        _issue, _run, session = self.target()
        if session is None:
            return
        path = session.session_file
        self.app.copy_to_clipboard(path)  # OSC 52: the terminal may or may not honour it
        self.notify(
            f"{path}\n(copy sent to the terminal; not every terminal accepts it)", title="session file", timeout=10
        )

    def action_pause(self) -> None:
        self.vik.engine.pause()
        self.notify("intake paused; running stages continue", title="intake")
        self.vik.request_refresh()

    def action_resume(self) -> None:
        self.vik.engine.resume()
        self.notify("intake resumed", title="intake")
        self.vik.request_refresh()

    def action_drain(self) -> None:
        said = self.vik.engine.drain()
        self.notify(f"{said}; p resumes", title="drain")
        self.vik.request_refresh()

    def action_poll_now(self) -> None:
        if self.view is not None and self.view.intake.paused:
            self.notify("intake is paused; p resumes it (and polls)", title="not polling")
            return
        self.vik.engine.poll_now()
        self.vik.request_refresh()

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()
        self._follow_cursor()  # now, not after a RowHighlighted message queued behind the agents'

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()
        self._follow_cursor()

    def action_next_pane(self) -> None:
        self.panes.cycle(1)

    def action_prev_pane(self) -> None:
        self.panes.cycle(-1)

    def action_attention(self) -> None:
        self.attention = not self.attention
        self.vik.request_refresh()

    def action_toggle_backlog(self) -> None:
        self.backlog = not self.backlog
        self.vik.request_refresh()

    def action_queue(self) -> None:
        from vik_tui.ui.screens.queue import QueueScreen

        self.app.push_screen(QueueScreen())

    def action_read(self) -> None:
        issue, _run, session = self.target()
        if issue is None or session is None:
            return
        label = self.panes.tab_label(session.session_uuid) or session.stage
        from vik_tui.ui.screens.reader import ReaderScreen

        self.app.push_screen(ReaderScreen(f"{issue.id} · {label}", session.session_file))

    @on(DataTable.RowSelected, "#issue-table")
    def _row_selected(self, _event: DataTable.RowSelected) -> None:
        """enter in the list reads the shown session whole, like `e`."""
        if self.check_action("read", ()) is True:
            self.action_read()

    async def action_take_over(self) -> None:
        issue, _run, session = self.target()
        if issue is None or session is None:
            return
        plan = await self.vik.engine.takeover_plan(issue.id, session.session_uuid)
        if isinstance(plan, Refused):
            self.notify(plan.reason, title="take over", severity="warning", timeout=8)
            return
        if self._shown_elsewhere(plan, "take over"):
            return
        await self._run_takeover(plan)

    def _shown_elsewhere(self, plan: Terminal, title: str) -> bool:
        """In a browser tab (`vik-tui web`: no terminal to suspend into), or attached to a
        supervisor on another machine (or whose workspace is not reachable here): show the exact
        command to run instead of failing to run it here."""
        if self.app.is_web:
            self._show_command(plan, title, "in_browser")
            return True
        engine = self.vik.engine
        if not isinstance(engine, Attached) or engine.runs_here(plan):
            return False
        self._show_command(plan, title, "elsewhere")
        return True

    def _show_command(self, plan: Terminal, title: str, why: Literal["in_browser", "elsewhere", "no_suspend"]) -> None:
        from vik_tui.ui.screens.command import ELSEWHERE, IN_BROWSER, NO_SUSPEND, CommandScreen

        reasons = {"in_browser": IN_BROWSER.format(host=socket.gethostname()), "elsewhere": ELSEWHERE}
        reason = reasons.get(why, NO_SUSPEND)
        command = f"cd {shlex.quote(str(plan.cwd))} && {plan.command_line}"
        self.app.push_screen(CommandScreen(title, command, reason))

    def action_stop_supervisor(self) -> None:
        self.vik.stop_supervisor()

    async def _run_takeover(self, plan: Terminal) -> None:
        if inside_tmux():
            ok, message = await asyncio.to_thread(open_in_tmux, plan)
            self.notify(message, title="take over", severity="information" if ok else "error")
            return
        try:
            with self.app.suspend():
                run_attached(plan)  # synchronous on purpose: never await while suspended
        except SuspendNotSupported:
            self._show_command(plan, "take over", "no_suspend")

    def action_toggle_log(self) -> None:
        self.toggle_class("-show-log")

    def action_help(self) -> None:
        from vik_tui.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.vik.glyphs))

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        if not box.display and not self.needle:
            return
        box.value = ""
        box.display = False
        self.needle = ""
        self.table.focus()
        self.vik.request_refresh()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self.vik.request_refresh()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, _event: Input.Submitted) -> None:
        if not self.needle:
            self.filter_box.display = False
        self.table.focus()
