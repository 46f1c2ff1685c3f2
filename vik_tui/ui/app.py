"""The Textual app: runs the Supervisor inside its event loop and repaints from its events.

Engine events arrive through `subscribe()` (a plain callback in the same loop). They only go
into buffers: streamed records into the session's own text (`texts`, a `SessionTexts`), every
other event into a pending list; a 50 ms timer turns a burst into one repaint: one snapshot,
changed table cells, one `write_lines` to the session pane, one write to the log pane. While
many agents stream, the pane's text is written every 100 ms and the table once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path, PurePath
from typing import Any

from rich.text import Text
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from vik_tui.config.diagnostics import Diagnostic
from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.engine.engine_events import (
    AgentEvents,
    ConfigRejected,
    ConfigReloaded,
    EngineEvent,
    HostUnhealthy,
    Intake,
    IntakeFailed,
    Log,
    RetryGivenUp,
    StageFinished,
    plural,
)
from vik_tui.engine.view import RunStatus
from vik_tui.ui.app_api import Vik
from vik_tui.ui.clock import Clock
from vik_tui.ui.engine_api import (
    TERMINAL_CLOSED,
    AlreadyRunning,
    Attached,
    Engine,
    install_stop_signals,
    local_engine,
)
from vik_tui.ui.event_lines import EventLines
from vik_tui.ui.glyphs import Glyphs, default_glyphs
from vik_tui.ui.heap import tune_collector
from vik_tui.ui.keys import KEYS
from vik_tui.ui.osc import notification
from vik_tui.ui.pacing import FRAME, FramePace
from vik_tui.ui.paths import stylesheet
from vik_tui.ui.screens.confirm import ConfirmScreen
from vik_tui.ui.screens.main import MainScreen
from vik_tui.ui.session_text import SessionTexts
from vik_tui.ui.text import one_line, sanitize
from vik_tui.ui.throughput import Throughput

FIRST_LIST_WAIT = 0.5  # the engine waits at most this long for the first list to be drawn
GAVE_UP = "gave up"
HOST_ALERT = "host "  # an alert about an SSH worker host, not a stage
ALERT_TIMEOUT = 12.0  # seconds a failure toast stays (merged with failures that follow)
KEEP_RUNNING_HINT = (
    "To keep agents running when this window closes, start them with `vik-tui run -d {workflow}`;"
    " then `vik-tui {workflow}` attaches to them (q detaches)."
)
CSS_FILES: list[str | PurePath] = [stylesheet("app.tcss"), stylesheet("screens.tcss")]


class VikApp(App[int]):
    """One app per Supervisor. `clock=FrozenClock()` gives deterministic output for snapshots."""

    CSS_PATH = CSS_FILES
    TITLE = "vik-tui"
    first_list_wait = FIRST_LIST_WAIT  # a test of the ordering (not of the cap) raises it

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        bell: bool = True,
        glyphs: Glyphs | None = None,
        load_history: bool = True,
        warnings: Iterable[Diagnostic] = (),
        tune_gc: bool = False,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.clock = clock or Clock()
        self.glyphs = glyphs or default_glyphs()
        self.bell_enabled = bell
        self.desktop_notifications: list[str] = []  # the OSC sequences sent (what a test can see)
        self.load_history = load_history
        self.warnings = list(warnings)
        self.tune_gc = tune_gc  # the real program (`run_app`); not tests, where apps share a process
        self.engine_done = False
        self.quitting = False
        self.exit_message: str | None = None
        self._engine_worker: Worker[Any] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._remove_signal_handlers: Callable[[], None] | None = None
        self._pending_events: list[EngineEvent] = []
        self.texts = SessionTexts(engine.session_records, self.clock, self.glyphs)
        self.pace = FramePace()
        self._first_list_painted = False
        self._first_list_drawn = asyncio.Event()
        self._event_lines = EventLines(self.clock)
        self._last_intake_error: str | None = None
        self.throughput = Throughput()
        self._alerts: list[tuple[float, str, str]] = []  # (when, where, why) of failures on screen
        self.main: MainScreen = MainScreen()
        if self.clock.frozen:
            self.animation_level = "none"  # snapshots: no half-moved tab underline

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return self.main

    async def on_mount(self) -> None:
        if self.load_history:
            try:  # reads session files: off the UI loop, before anything else uses the engine
                await self.engine.load_history()
            except Exception as exc:
                self.notify(f"could not load earlier sessions: {exc}", severity="warning")
        if self.tune_gc:
            tune_collector()
        self._unsubscribe = self.engine.subscribe(self._on_engine_event)
        if isinstance(self.engine, Attached):  # the mirror moved, or the connection did: repaint
            self.engine.on_change = self.request_refresh
        self.engine.before_first_dispatch = self._wait_first_list
        # SIGTERM, SIGINT and SIGHUP (the terminal closed): stop every agent cleanly, then exit
        self._remove_signal_handlers = install_stop_signals(asyncio.get_running_loop(), self._stop_by_signal)
        self._engine_worker = self.run_worker(
            self._run_engine(),
            name="supervisor",
            group="supervisor",
            exclusive=True,
            exit_on_error=False,
        )
        for diag in self.warnings:
            self._pending_events.append(
                Log(ts="", level="warning", message=diag.render(self.engine.workflow_path.name))
            )
        if self.warnings:
            self.notify(
                f"{len(self.warnings)} warning(s) in the workflow; see the log pane or `vik-tui doctor`",
                severity="warning",
            )
        self._repaint()
        self.set_interval(FRAME, self._repaint)

    async def _run_engine(self) -> None:
        try:
            await self.engine.run()
        except AlreadyRunning as exc:
            self._fail(f"vik-tui: {exc}")
        except OSError as exc:
            self._fail(f"vik-tui: {exc}" if self.attached else f"vik-tui: cannot run the workflow: {exc}")
        except Exception as exc:  # an engine bug: say so plainly instead of a traceback
            self._fail(f"vik-tui: the supervisor stopped unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            self.engine_done = True
            self.pace.changed()

    def _fail(self, message: str) -> None:
        """Exit with `message` printed after the terminal is restored: as text (a Rich `Text`),
        since it carries outside text (paths, the API's errors) and a str would be Rich markup."""
        self.exit_message = message
        self.exit(return_code=1, message=Text(sanitize(message)))

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._remove_signal_handlers:
            self._remove_signal_handlers()

    def _stop_by_signal(self, reason: str) -> None:
        """No question asked: the engine stops with `reason` and the app exits once it has.

        After a hang-up there is no terminal to restore, and Textual's teardown would write to
        it: once the engine has stopped (outcomes written, groups gone) the process just ends."""
        if reason == TERMINAL_CLOSED and self._engine_worker is not None:
            self.engine.stop(reason)
            self.run_worker(self._end_after_hangup(self._engine_worker), group="shutdown")
            return
        if not self.quitting:
            self.engine.stop(reason)
            self._begin_quit()

    async def _end_after_hangup(self, worker: Worker[Any]) -> None:
        with contextlib.suppress(Exception):
            await worker.wait()
        os._exit(0)

    # -- engine events → buffers → one repaint per frame -----------------------------------
    def _on_engine_event(self, event: EngineEvent) -> None:
        """Called synchronously by the engine: only buffer, never touch widgets here."""
        if isinstance(event, AgentEvents):
            self.pace.streamed(event.session_file)
            self.texts.receive(event.session_file, event.records)
            return
        self.pace.changed()
        self._pending_events.append(event)
        if isinstance(event, Intake) and not self._first_list_painted:
            # the first list goes on screen now, before the stages this intake dispatches are
            # prepared and spawned on the same loop (on a big tracker that takes most of a second)
            self._first_list_painted = True
            asyncio.get_running_loop().call_soon(self._paint_first_list)

    def _paint_first_list(self) -> None:
        self._repaint()
        if self.main.ready and self.main.is_mounted:
            self.main.call_after_refresh(self._check_first_list)
        else:
            self._first_list_drawn.set()
        if self.tune_gc:
            tune_collector()

    def _check_first_list(self) -> None:
        """After a refresh: the list's rows are laid out (a DataTable measures new rows when
        idle, so the first refresh after adding them may still draw an empty table)."""
        if self._first_list_drawn.is_set():
            return  # drawn, or the engine stopped waiting
        try:
            table = self.main.table
            drawn = table.virtual_size.height > 1 or not table.row_count
        except NoMatches:
            drawn = True
        if drawn:
            self._first_list_drawn.set()
        else:
            self.main.call_after_refresh(self._check_first_list)

    async def _wait_first_list(self) -> None:
        """The engine's `before_first_dispatch`: the first list goes on screen before the
        stages it dispatches are spawned. On a big tracker 20 agents starting at once held the
        loop (fork, exec, durable records) and then the CPU for over a second while the list
        waited. Never longer than `first_list_wait`: the screen must not hold up the work."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_list_drawn.wait(), self.first_list_wait)
        self._first_list_drawn.set()

    @property
    def attached(self) -> bool:
        """The supervisor runs in another process: q detaches, Q stops it."""
        return isinstance(self.engine, Attached)

    def header_note(self) -> str | None:
        """What the header adds after the engine's facts: the connection when attached, else
        that agents are being stopped."""
        engine = self.engine
        if isinstance(engine, Attached):
            note = engine.attachment()
            return f"{note} · detaching…" if self.quitting else note
        return "stopping agents…" if self.quitting else None

    def request_refresh(self) -> None:
        self.pace.force_full()

    def bindings_may_change(self) -> None:
        if self.main.ready:
            self.main.bindings_may_change()

    def _repaint(self) -> None:
        if not self.main.ready:
            return
        full = self.pace.next_frame(time.monotonic(), bool(self._pending_events))
        if full is None:
            return
        events, self._pending_events = self._pending_events, []
        lines = [line for line in map(self._event_lines.line, events) if line is not None]
        try:
            # a frame that only streams records reuses the last snapshot: building one per
            # frame for every issue is wasted work while nothing but output changed
            view = self.engine.snapshot() if full or self.main.view is None else self.main.view
            if full and not self.clock.frozen:
                self.throughput.sample(view.tokens.total)
            self.main.apply(view, lines, full=full)
        except NoMatches:
            return  # the screen is being torn down (quit): nothing left to paint
        if events:
            self._alert(events)

    # -- notifications ----------------------------------------------------------------------
    def _alert(self, events: list[EngineEvent]) -> None:
        """Toasts only for what needs a human: failures and give-ups, merged into one toast
        (`3 stages failed`). Completions go to the log pane and the row; a rejected config
        edit opens its dialog and nothing else."""
        fresh: list[tuple[str, str]] = []
        for event in events:
            if event.needs_attention():  # the engine's choice, the same as notify.command's
                self._desktop_notify(event)
            match event:
                case StageFinished(state=RunStatus.FAILED):
                    fresh.append((event.where, one_line(event.reason, 120) or "failed"))
                case RetryGivenUp():
                    fresh.append((event.where, f"{GAVE_UP} after {plural(event.attempts, 'attempt')}"))
                case IntakeFailed():
                    error = one_line(event.error, 200)
                    if error != self._last_intake_error:
                        fresh.append(("intake", error))
                    self._last_intake_error = error
                case Intake():
                    self._last_intake_error = None
                case HostUnhealthy():
                    fresh.append((f"{HOST_ALERT}{event.host}", one_line(event.error, 120) or "unreachable"))
                case ConfigRejected():
                    self._show_rejected_config(list(event.errors))
                case ConfigReloaded():
                    self._close_rejected_config()
        if fresh:
            self._raise_alert(fresh)
            if self.bell_enabled:
                self.bell()

    def _desktop_notify(self, event: EngineEvent) -> None:
        """Attention events only (never a completion): an OSC 9 / 777 desktop notification,
        passed through tmux. `--no-bell` turns it off with the bell."""
        if not self.bell_enabled:
            return
        sequence = notification(f"vik-tui {self.engine.workflow_path.name}", event.describe(), os.environ)
        self.desktop_notifications.append(sequence)
        if not self.is_headless and self._driver is not None:
            self._driver.write(sequence)

    def _raise_alert(self, fresh: list[tuple[str, str]]) -> None:
        """One toast for every failure still on screen: a stage that failed and then gave up
        counts once (as given up)."""
        now = time.monotonic()
        alerts = {where: (when, why) for when, where, why in self._alerts if now - when < ALERT_TIMEOUT}
        for where, why in fresh:
            if not (alerts.get(where, (0.0, ""))[1].startswith(GAVE_UP) and not why.startswith(GAVE_UP)):
                alerts[where] = (now, why)
        self._alerts = [(when, where, why) for where, (when, why) in alerts.items()]
        gave_up = sum(1 for _when, why in alerts.values() if why.startswith(GAVE_UP))
        failed = len(alerts) - gave_up
        if len(alerts) == 1:
            where, (_when, why) = next(iter(alerts.items()))
            title = f"{where} needs a human" if gave_up else f"{where} failed"
            if where.startswith(HOST_ALERT):
                title = f"{where} unreachable"
            message = why
        else:
            heads = [f"{plural(failed, 'stage')} failed"] if failed else []
            if gave_up:
                heads.append(f"{gave_up} given up")
            title = ", ".join(heads)
            names = list(reversed(alerts))
            message = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        self.clear_notifications()  # one alert toast at a time: the merged one
        self.notify(f"{message}\n! lists what needs attention", title=title, severity="error", timeout=ALERT_TIMEOUT)

    def _close_rejected_config(self) -> None:
        """The fixed file reloaded: the dialog about the rejected edit is out of date."""
        from vik_tui.ui.screens.diagnostics import RejectedEditScreen

        if isinstance(self.screen, RejectedEditScreen):
            self.screen.dismiss("close")
            self.notify("the fixed workflow was reloaded and applies now", title="workflow", timeout=4)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast shows its text as text, never markup: ids, titles, failure reasons and
        agent text come from outside, and a `[/]` or `[a=1=2]` in them raised MarkupError and
        ended the app (and its agents). `markup` is ignored: a screen's or widget's `notify`
        passes `markup=True` by default. Control codes are dropped, bidi overrides and lone
        surrogates shown as escapes (`text.sanitize`)."""
        del markup  # Textual's signature; never markup
        message, title = sanitize(message), one_line(title, 200)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _show_rejected_config(self, errors: list[Diagnostic]) -> None:
        from vik_tui.ui.screens.diagnostics import DiagnosticsScreen, RejectedEditScreen  # rarely needed

        if isinstance(self.screen, DiagnosticsScreen):
            return
        path = str(self.engine.workflow_path)
        headline = "This edit of the workflow was not applied; the last good configuration stays"
        self.push_screen(RejectedEditScreen(errors, path, headline))

    # -- quitting ---------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Stop every agent cleanly (asking first when any runs), then exit."""
        if self.quitting:
            return
        if self.attached:  # detach: the supervisor and its agents go on
            self._begin_quit()
            return
        started = self._engine_worker is not None  # not while history still loads in a thread
        running = self.engine.snapshot().active_run_count if started and not self.engine_done else 0
        if not running:
            self._begin_quit()
            return
        question = (
            "1 agent is running; stop it and quit?"
            if running == 1
            else f"{running} agents are running; stop them and quit?"
        )
        question += "\n\n" + KEEP_RUNNING_HINT.format(workflow=self.engine.workflow_path)

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_quit()

        self.push_screen(ConfirmScreen(question, yes="Stop and quit", no="Stay"), answered)

    def _begin_quit(self) -> None:
        self.quitting = True
        self.pace.changed()
        worker = self._engine_worker
        if self.engine_done or worker is None or worker.state not in (WorkerState.PENDING, WorkerState.RUNNING):
            self.exit(return_code=0)
            return
        self.engine.stop()
        self.run_worker(self._exit_when_stopped(worker), group="shutdown")

    def stop_supervisor(self) -> None:
        """Attached: ask first, then stop the supervisor (its agents stop cleanly) and exit once
        it has gone."""
        engine = self.engine
        if not isinstance(engine, Attached) or self.quitting:
            return
        running = engine.snapshot().active_run_count
        agents = f" and its {plural(running, 'running agent')}" if running else ""
        question = f"Stop the supervisor{agents}? (q only detaches: agents keep running)"

        def answered(yes: bool | None) -> None:
            if not yes or self.quitting:
                return
            self.quitting = True
            self.pace.changed()
            engine.stop_supervisor()
            worker = self._engine_worker
            if worker is None:
                self.exit(return_code=0)
            else:
                self.run_worker(self._exit_when_stopped(worker), group="shutdown")

        self.push_screen(ConfirmScreen(question, yes="Stop supervisor", no="Keep it"), answered)

    async def _exit_when_stopped(self, worker: Worker[Any]) -> None:
        with contextlib.suppress(Exception):
            await worker.wait()  # every session's process group is gone when run() returns
        if self.exit_message is None:
            self.exit(return_code=0)

    # -- command palette --------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        for key in KEYS:
            if not key.palette or key.action.startswith("app."):
                continue
            if screen.check_action(key.action, ()) is not True:
                continue
            title = key.palette_title or key.label.capitalize()
            yield SystemCommand(title, key.help, _runner(screen, key.action))


KEEPS_THE_CONTRACT: type[Vik] = VikApp  # mypy checks the app is what its screens read it as


def _runner(screen: MainScreen, action: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await screen.run_action(action)

    return run


class DiagnosticsApp(App[str]):
    """Shown instead of the main app when the workflow has errors: never a traceback."""

    CSS_PATH = CSS_FILES
    TITLE = "vik-tui"

    def __init__(self, result: LoadResult, display_path: str | None = None) -> None:
        super().__init__()
        self.result = result
        self.display_path = display_path or str(result.path)

    def on_mount(self) -> None:
        findings = list(self.result.diagnostics)
        headline = "The workflow cannot start" if not self.result.fatal else "The workflow file cannot be read"
        from vik_tui.ui.screens.diagnostics import DiagnosticsScreen

        self.push_screen(DiagnosticsScreen(findings, self.display_path, headline), self._finished)

    def _finished(self, result: str | None) -> None:
        if result == "recheck":
            self.exit("recheck")
        else:
            self.exit("quit", return_code=1)


def run_app(
    workflow_path: str | Path,
    watch: bool = True,
    bell: bool = True,
    prepare: Callable[[Engine], None] | None = None,
) -> int:
    """The `vik-tui [WORKFLOW]` entry point. Returns the process exit code. `prepare` sees the
    local engine before it runs (`cli` gives it the HTTP API; the UI knows nothing of that)."""
    while True:
        result = load_workflow(workflow_path)
        if result.ok and result.workflow is not None:
            break
        diagnostics = DiagnosticsApp(result)
        outcome = diagnostics.run()
        if outcome != "recheck":
            return 1
    try:
        supervisor = local_engine(result.workflow, result.path, watch=watch)
    except (OSError, ValueError) as exc:
        print(f"vik-tui: cannot set up the workflow: {exc}", file=sys.stderr)
        return 1
    if prepare is not None:
        prepare(supervisor)
    return run_engine_app(supervisor, bell=bell, warnings=result.warnings)


def run_engine_app(engine: Engine, bell: bool = True, warnings: Iterable[Diagnostic] = ()) -> int:
    """The app over any Engine: the in-process Supervisor, or `cli`'s attached client."""
    app = VikApp(engine, bell=bell, warnings=warnings, tune_gc=True, load_history=not isinstance(engine, Attached))
    app.run()
    return app.return_code if app.return_code is not None else 0
