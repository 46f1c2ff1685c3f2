"""Scripted-engine tests of what the screen promises at a glance: failures in one toast, the
`!` filter, unique tab labels, switching panes in place, the reader, the queue view and the
commands that explain themselves instead of doing nothing silently."""

from __future__ import annotations

from pathlib import Path

import pytest
import scripted_engine as scripted
from conftest import wait_on_screen
from textual.widgets import Static

from vik_tui.agents.resume import NotResumable, resume_command
from vik_tui.config.schema import AgentConfig
from vik_tui.engine.engine_events import HostUnhealthy
from vik_tui.engine.places.local import LocalPlace
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.stages.takeover import TakeoverRefused, make_plan
from vik_tui.ui.app import VikApp
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.screens.queue import QueueScreen
from vik_tui.ui.screens.reader import ReaderScreen
from vik_tui.ui.widgets.issue_table import IssueTable
from vik_tui.ui.widgets.stage_panes import NO_SESSION, StagePanes
from vik_tui.ui.widgets.tab_row import visible_window


def app_for(name: str) -> VikApp:
    return VikApp(scripted.SCENARIOS[name](), clock=FrozenClock(scripted.NOW), bell=False, glyphs=UNICODE)


def rows(app: VikApp) -> list[str]:
    return list(app.main.query_one(IssueTable).keys)


def info(app: VikApp) -> str:
    return str(app.main.query_one("#pane-info", Static).render())


async def test_three_failures_raise_one_toast_and_completions_none() -> None:
    app = app_for("attention")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: app._notifications, "the toast")
        await pilot.pause(0.2)
        toasts = list(app._notifications)
        assert len(toasts) == 1
        assert toasts[0].title == "2 stages failed, 1 given up"
        assert "ENG-41/plan" in toasts[0].message and "! lists" in toasts[0].message


async def test_attention_filter_lists_failed_given_up_and_rejected() -> None:
    app = app_for("attention")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: rows(app), "the rows")
        assert "ENG-44" in rows(app) and "ENG-45" not in rows(app)  # the backlog is summarised
        assert "4 need attention" in str(app.main.query_one("#status", Static).render())
        await pilot.press("exclamation_mark")
        await wait_on_screen(pilot, lambda: "ENG-44" not in rows(app), "the filter")
        assert rows(app)[:3] == ["ENG-41", "ENG-42", "ENG-43"] and rows(app)[3].startswith("!rejected:")
        await pilot.press("exclamation_mark")
        await wait_on_screen(pilot, lambda: "ENG-44" in rows(app), "every row again")


async def test_tabs_are_numbered_per_stage_and_switching_is_in_place() -> None:
    app = app_for("retries")
    async with app.run_test(size=(140, 40)) as pilot:
        panes = app.main.query_one(StagePanes)
        await wait_on_screen(pilot, lambda: panes.tab_row.tabs, "the tabs")
        labels = [tab.text.rsplit(" ", 1)[0] for tab in panes.tab_row.tabs]
        assert len(labels) == len(set(labels)) == 11
        assert labels[:5] == ["plan #1", "plan #2", "plan #3", "plan #4", "implement #1"]
        assert labels[-1] == "implement #5"  # the running one, selected
        assert info(app).startswith("implement #5 · running")
        children = len(panes.children)
        await pilot.press("j")  # to ENG-31: no session: the placeholder is the truth here
        await wait_on_screen(pilot, lambda: NO_SESSION in info(app), "the placeholder for an issue without sessions")
        await pilot.press("k")
        # the same call that moved the cursor refilled the pane: no frame shows the placeholder
        assert info(app).startswith("implement #5") and panes.active_session_uuid() is not None
        assert len(panes.children) == children  # nothing mounted or removed
        await pilot.press("shift+tab")
        assert info(app).startswith("review #2")


def test_tab_window_keeps_the_active_label_visible() -> None:
    widths = [12] * 10
    start, end = visible_window(widths, 9, 60)
    assert end == 10 and start > 0
    start, end = visible_window(widths, 0, 60)
    assert start == 0 and end < 10
    assert visible_window(widths, 4, 500) == (0, 10)


async def test_reader_shows_every_output_line_and_searches() -> None:
    app = app_for("busy")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.query_one(StagePanes).settled() and rows(app), "the pane")
        await pilot.press("e")
        await wait_on_screen(
            pilot, lambda: isinstance(app.screen, ReaderScreen) and len(app.screen.lines) > 5, "the reader"
        )
        reader = app.screen
        assert isinstance(reader, ReaderScreen)
        text = "\n".join(reader.lines)
        assert "E   assert None is not None" in text and "more line" not in text  # the whole output
        await pilot.press("slash", "p", "a", "s", "s", "enter")
        await wait_on_screen(pilot, lambda: reader.matches, "a match")
        assert all("pass" in reader.lines[i].lower() for i in reader.matches)
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, ReaderScreen), "it to close")


async def test_queue_view_lists_the_pending_retry_with_its_error() -> None:
    app = app_for("failure")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: rows(app), "the rows")
        await pilot.press("t")

        def queue_text() -> str:  # "" until the view is up and filled (on mount)
            if not isinstance(app.screen, QueueScreen):
                return ""
            return str(app.screen.query_one("#queue-text", Static).render())

        await wait_on_screen(pilot, lambda: "Retry queue" in queue_text(), "the queue view")
        text = queue_text()
        assert "ENG-21/plan" in text and "#2" in text and "12s" in text and "context window exceeded" in text


async def test_commands_that_cannot_apply_say_why() -> None:
    app = app_for("attention")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: rows(app), "the rows")
        app.clear_notifications()
        await pilot.press("c")  # ENG-41/plan failed: nothing runs
        await wait_on_screen(pilot, lambda: any("not running" in n.message for n in app._notifications), "the reason")
        await pilot.press("a")  # the scripted engine refuses, like a running stage would be refused
        await wait_on_screen(pilot, lambda: any(n.title == "take over" for n in app._notifications), "the refusal")
        assert ("takeover_plan", "ENG-41", app.main.panes.active_session_uuid()) in app.engine.calls  # type: ignore[attr-defined]


def test_resume_commands_per_runtime() -> None:
    codex = AgentConfig(runtime="codex", model="gpt-5.5", command="/opt/codex", args={"full-auto": True})
    assert resume_command(codex, "abc") == ["/opt/codex", "resume", "-m", "gpt-5.5", "abc"]
    claude = AgentConfig(runtime="claude_code", model="sonnet")
    assert resume_command(claude, "s1") == ["claude", "--model", "sonnet", "--resume", "s1"]
    with pytest.raises(NotResumable):
        resume_command(AgentConfig(runtime="demo", model="m"), "x")
    with pytest.raises(NotResumable):
        resume_command(codex, "")


def test_take_over_is_refused_while_the_stage_runs(tmp_path: Path) -> None:
    agent = AgentConfig(runtime="codex", model="")
    place = LocalPlace(Layout(tmp_path / "workflow.yml", tmp_path, tmp_path / "root"))
    workdir = tmp_path / "root" / "issues" / "A-1"
    with pytest.raises(TakeoverRefused, match="is running"):
        make_plan("A-1/plan #1", True, agent, str(tmp_path / "s.jsonl"), "id", place, "A-1")
    session_file = tmp_path / "s.jsonl"
    session_file.write_text('{"kind": "session_started", "session_id": "thread-9", "ts": "2026-01-15T12:00:00Z"}\n')
    with pytest.raises(TakeoverRefused, match="does not exist"):
        make_plan("A-1/plan #1", False, agent, str(session_file), None, place, "A-1")
    workdir.mkdir(parents=True)
    plan = make_plan("A-1/plan #1", False, agent, str(session_file), None, place, "A-1")
    assert plan.argv == ("codex", "resume", "thread-9") and plan.cwd == workdir


async def test_an_unreachable_host_raises_a_toast_and_shows_in_the_header() -> None:
    app = app_for("hosts")
    async with app.run_test(size=(150, 34)) as pilot:
        await wait_on_screen(pilot, lambda: rows(app), "the rows")
        status = str(app.main.query_one("#status", Static).render())
        assert "hosts build-1 2/2 · build-2 ✗" in status
        app.engine.emit(HostUnhealthy(host="build-2", error="ssh: connect to host 10.0.4.12 port 22: refused"))
        await wait_on_screen(pilot, lambda: app._notifications, "the toast")
        (toast,) = list(app._notifications)
        assert toast.title == "host build-2 unreachable" and "refused" in toast.message


async def test_the_attention_filter_with_nothing_to_show_says_it_is_on() -> None:
    """Issue #17 item 8: `!` with nothing to show gave an empty list and no sign of the filter."""
    app = app_for("retries")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: rows(app), "the rows")
        await pilot.press("exclamation_mark")
        line = app.main.query_one("#backlog-line", Static)
        await wait_on_screen(pilot, lambda: not rows(app) and "filter on" in str(line.render()), "the filter line")
        assert line.display and "no issue needs attention" in str(line.render())
        assert "! shows all" in str(line.render())


async def test_the_rejected_edit_dialog_closes_once_the_fixed_file_reloads() -> None:
    """Issue #17 item 8: the hot-reload error screen stayed up after the fixed file reloaded."""
    from vik_tui.config.diagnostics import Diagnostic, Severity
    from vik_tui.engine.engine_events import ConfigRejected, ConfigReloaded
    from vik_tui.ui.screens.diagnostics import RejectedEditScreen

    app = app_for("idle")
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_on_screen(pilot, lambda: app.main is not None, "the main screen")
        error = Diagnostic(Severity.ERROR, "loop.wait_ms", "invalid_type", "must be an integer", line=3)
        app.engine.emit(ConfigRejected(errors=(error,)))  # type: ignore[attr-defined]
        await wait_on_screen(pilot, lambda: isinstance(app.screen, RejectedEditScreen), "the dialog")
        app.engine.emit(ConfigReloaded(warnings=0))  # type: ignore[attr-defined]
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, RejectedEditScreen), "the dialog closing")
        await wait_on_screen(pilot, lambda: any("reloaded" in n.message for n in app._notifications), "the toast")
