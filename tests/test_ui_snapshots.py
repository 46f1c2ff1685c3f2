"""SVG snapshots of the real app on scripted engine state with a frozen clock.

`snap_compare` is synchronous (it runs its own event loop): these test functions must not be
async. Refresh the SVGs with `pytest tests/test_ui_snapshots.py --snapshot-update` and look at
them before committing (tests/__snapshots__/test_ui_snapshots/).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import scripted_engine as scripted
from conftest import Project, base_workflow
from textual.pilot import Pilot

from vik_tui.agents.events import AgentEvent
from vik_tui.config.loader import load_workflow
from vik_tui.engine.engine_events import EngineEvent
from vik_tui.engine.view import EngineView, RunView, SessionView
from vik_tui.ui.app import DiagnosticsApp, VikApp
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.screens.diagnostics import DiagnosticsScreen
from vik_tui.ui.screens.help import HelpScreen
from vik_tui.ui.screens.queue import QueueScreen
from vik_tui.ui.screens.reader import ReaderScreen
from vik_tui.ui.widgets.issue_table import IssueTable
from vik_tui.ui.widgets.stage_panes import StagePanes


def app_for(name: str) -> VikApp:
    # fixed glyphs too: VIK_TUI_ASCII in the environment must not change the pictures
    return VikApp(scripted.SCENARIOS[name](), clock=FrozenClock(scripted.NOW), bell=False, glyphs=UNICODE)


async def settled(pilot: Pilot[Any]) -> None:
    """Wait until the shown pane has replayed its session and the layout stopped changing
    (the issue table re-fits its title column once the wide/narrow layout applies)."""
    app = pilot.app
    assert isinstance(app, VikApp)
    deadline = time.monotonic() + 10
    last: tuple[Any, ...] = ()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if not app.main.ready or app.main.view is None:
            continue
        panes = app.main.query_one(StagePanes)
        if not panes.settled():
            continue
        table = app.main.query_one(IssueTable)
        columns = tuple(column.width for column in table.columns.values())  # re-fitted: a rebuild
        state = (tuple(table.keys), columns, app.size, panes.log_widget.line_count)
        if state != last:
            last, quiet_since = state, time.monotonic()
        elif time.monotonic() - quiet_since > 0.4:
            break
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_main_idle(snap_compare: Any) -> None:
    assert snap_compare(app_for("idle"), terminal_size=(110, 30), run_before=settled)


def test_busy_streaming_pane(snap_compare: Any) -> None:
    assert snap_compare(app_for("busy"), terminal_size=(140, 40), run_before=settled)


def test_failure_with_retry_countdown(snap_compare: Any) -> None:
    assert snap_compare(app_for("failure"), terminal_size=(120, 32), run_before=settled)


def test_ssh_hosts_in_header_list_and_pane(snap_compare: Any) -> None:
    assert snap_compare(app_for("hosts"), terminal_size=(150, 34), run_before=settled)


def test_small_terminal_80x24(snap_compare: Any) -> None:
    assert snap_compare(app_for("busy"), terminal_size=(80, 24), run_before=settled)


def test_help_screen(snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        while not isinstance(pilot.app.screen, HelpScreen):
            await pilot.pause(0.05)
        await pilot.pause(0.2)

    assert snap_compare(app_for("busy"), terminal_size=(120, 36), run_before=open_help)


def test_diagnostics_screen(snap_compare: Any, project: Project) -> None:
    data = base_workflow(project)
    data["issue"]["stages"]["plan"]["agent"] = "nobody"
    data["loop"]["max_issue_concurrency"] = "four"
    data["loop"]["colour"] = "blue"
    result = load_workflow(project.write(data))
    assert not result.ok
    app = DiagnosticsApp(result, display_path="/home/dev/project/workflow.yml")

    async def shown(pilot: Pilot[Any]) -> None:
        while not isinstance(pilot.app.screen, DiagnosticsScreen):
            await pilot.pause(0.05)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=shown)


def test_snapshot_inputs_are_fixed() -> None:
    """The scripted state must not depend on the host: no tmp paths, fixed times."""
    for name, build in scripted.SCENARIOS.items():
        text = repr(build().snapshot())
        assert "/tmp" not in text and str(Path.home()) not in text.replace("/home/dev", ""), name


def test_scripted_engine_serves_the_real_contract() -> None:
    """The fake engine builds the engine's own view and event classes, so it cannot drift."""
    for name, build in scripted.SCENARIOS.items():
        engine = build()
        snap = engine.snapshot()
        assert type(snap) is EngineView, name
        for issue in snap.issues:
            assert all(isinstance(run, RunView) for run in issue.runs)
            assert all(isinstance(session, SessionView) for session in issue.sessions)
        for records in engine.records.values():
            assert all(isinstance(r, AgentEvent) for r in records)
        assert all(isinstance(e, EngineEvent) for e in engine.events)


def press_then_settle(*keys: str, screen: type | None = None) -> Any:
    """run_before: settle, press keys, wait for `screen` (if given), settle again."""

    async def run(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press(*keys)
        if screen is not None:
            while not isinstance(pilot.app.screen, screen):
                await pilot.pause(0.05)
            await pilot.pause(0.3)
        await settled(pilot)

    return run


def test_failures_in_one_toast_over_the_list(snap_compare: Any) -> None:
    """Three failures, one given up: one toast, top left over the list, never over the pane."""
    assert snap_compare(app_for("attention"), terminal_size=(120, 32), run_before=settled)


def test_attention_filter(snap_compare: Any) -> None:
    assert snap_compare(app_for("attention"), terminal_size=(120, 32), run_before=press_then_settle("exclamation_mark"))


def test_tab_row_numbers_and_scroll_marks_80x24(snap_compare: Any) -> None:
    assert snap_compare(app_for("retries"), terminal_size=(80, 24), run_before=settled)


def test_backlog_listed_at_100_columns(snap_compare: Any) -> None:
    """At 100 columns the title keeps the spare width (TOKENS and TIME give way first)."""
    assert snap_compare(app_for("busy"), terminal_size=(100, 30), run_before=press_then_settle("b"))


def test_reader_view(snap_compare: Any) -> None:
    assert snap_compare(
        app_for("busy"), terminal_size=(120, 36), run_before=press_then_settle("e", screen=ReaderScreen)
    )


def test_queue_view(snap_compare: Any) -> None:
    assert snap_compare(
        app_for("failure"), terminal_size=(120, 32), run_before=press_then_settle("t", screen=QueueScreen)
    )
