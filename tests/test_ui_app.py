"""The Textual app driven by Pilot against real Supervisors, real workflows and the fake agent.

Every wait polls a condition with a deadline (never a fixed sleep): the engine runs real
processes, so timings vary between machines.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Project, base_workflow, wait_on_screen
from textual.app import App
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import Input, Log, Static

from vik_tui.config.loader import load_workflow
from vik_tui.engine.processes.proc import group_alive
from vik_tui.engine.service.state import WorkflowLock
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.view import IntakeStatus, RunStatus, RunView, SessionView
from vik_tui.ui.app import DiagnosticsApp, VikApp
from vik_tui.ui.screens.command import NO_SUSPEND, CommandScreen
from vik_tui.ui.screens.confirm import ConfirmScreen
from vik_tui.ui.screens.diagnostics import DiagnosticsScreen
from vik_tui.ui.screens.diff import DiffScreen
from vik_tui.ui.screens.help import HelpScreen
from vik_tui.ui.widgets.issue_table import IssueTable
from vik_tui.ui.widgets.stage_panes import StagePanes

SIZE = (120, 40)


# -- helpers -----------------------------------------------------------------------------------
def workflow(
    project: Project,
    *,
    mode: str = "success",
    max_iterations: int | None = None,
    idle_sec: float = 1,
    grace: float = 1,
    max_attempts: int = 1,
    **agent_args: Any,
) -> Path:
    data = base_workflow(project)
    data["loop"].update(
        max_iterations=max_iterations,
        cancel_grace_sec=grace,
        retry={"max_attempts": max_attempts, "backoff_sec": 1, "max_backoff_sec": 1},
    )
    data["agents"]["codex"]["args"] = {"--mode": mode, **{f"--{k}": v for k, v in agent_args.items()}}
    data["issues"]["pull"]["idle_sec"] = idle_sec
    return project.write(data)


def supervisor(path: Path) -> Supervisor:
    result = load_workflow(path)
    assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
    return Supervisor(result.workflow, result.path, watch=False)


def run_view(app: VikApp, issue_id: str, stage: str = "plan") -> RunView | None:
    issue = app.engine.snapshot().find_issue(issue_id)
    return issue.run_of(stage) if issue else None


def run_status(app: VikApp, issue_id: str, stage: str = "plan") -> RunStatus | None:
    run = run_view(app, issue_id, stage)
    return run.status if run else None


def current_session(app: VikApp, issue_id: str, stage: str = "plan") -> SessionView:
    run = run_view(app, issue_id, stage)
    assert run is not None and run.session is not None, f"no session of {issue_id}/{stage}"
    return run.session


def history(app: VikApp, issue_id: str, stage: str = "plan") -> tuple[SessionView, ...]:
    """Every attempt's session of a stage so far (() before the stage exists)."""
    run = run_view(app, issue_id, stage)
    return run.history if run else ()


def rows(app: VikApp) -> list[str]:
    return list(app.main.query_one(IssueTable).keys)


def pane_text(app: VikApp) -> str:
    """The shown session's text once it is replayed ("" before)."""
    panes = app.main.query_one(StagePanes)
    return "\n".join(panes.log_widget.lines) if panes.active_session_uuid() and panes.settled() else ""


def findings_text(app: App[Any]) -> str:
    """The findings of the diagnostics screen on top, once it is composed ("" until then)."""
    if not isinstance(app.screen, DiagnosticsScreen):
        return ""
    try:
        return str(app.screen.query_one("#findings-text", Static).render())
    except NoMatches:
        return ""


def group_gone(pid: int) -> bool:
    """No process of the group runs: killpg finds none, or only zombies not reaped yet
    (in a bare container PID 1 may reap late or never)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return not group_alive(pid)


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def quit_app(pilot: Pilot[Any], app: VikApp) -> None:
    """q, answering yes if asked; then wait until the supervisor has stopped."""
    await pilot.press("q")
    await pilot.pause(0.1)
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")
    await wait_on_screen(pilot, lambda: app.engine_done, "the supervisor to stop")


# -- tests -------------------------------------------------------------------------------------
async def test_issues_appear_in_intake_order(project: Project) -> None:
    project.set_issues(
        [
            {"id": "B-2", "title": "Second in the tracker", "state": "backlog"},
            {"id": "A-1", "title": "First stage work", "state": "todo"},
        ]
    )
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: rows(app) == ["A-1"], "the stage's issue (the backlog is summarised)")
        assert "backlog 1" in str(app.main.query_one("#backlog-line", Static).render())
        await pilot.press("b")
        await wait_on_screen(pilot, lambda: rows(app) == ["B-2", "A-1"], "both rows, in intake order")
        table = app.main.query_one(IssueTable)
        assert table.get_row("B-2")[1].plain.startswith("Second")
        await wait_on_screen(pilot, lambda: run_status(app, "A-1") == "completed", "A-1 to complete")
        await wait_on_screen(pilot, lambda: "✓" in table.get_row("A-1")[3].plain, "the completed glyph")
        assert "workflow.yml" in str(app.main.query_one("#status", Static).render())
        await quit_app(pilot, app)


async def test_rejected_issue_shows_dimmed_with_reason(project: Project) -> None:
    project.set_issues(
        [{"id": "ok-1", "title": "fine", "state": "backlog"}, {"id": "../escape", "title": "bad id", "state": "todo"}]
    )
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        await wait_on_screen(pilot, lambda: len(rows(app)) == 2, "the rejected row")
        key = rows(app)[1]
        assert key.startswith("!rejected:")
        cells = app.main.query_one(IssueTable).get_row(key)
        assert cells[2].plain == "rejected"
        assert cells[1].plain  # the reason
        await quit_app(pilot, app)


async def test_pane_replays_a_session_opened_after_it_finished(project: Project) -> None:
    project.set_issues(
        [
            {"id": "X-0", "title": "nothing to do", "state": "backlog"},
            {"id": "X-1", "title": "does work", "state": "todo"},
        ]
    )
    app = VikApp(supervisor(workflow(project, lines=3)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")  # list the backlog issue X-0 too
        await wait_on_screen(
            pilot, lambda: run_status(app, "X-1") == "completed" and rows(app) == ["X-0", "X-1"], "X-1 to complete"
        )
        if app.main.selected != "X-0":  # `b` listed X-0 above the selected X-1
            await pilot.press("k")
            await wait_on_screen(pilot, lambda: app.main.selected == "X-0", "X-0 selected")
        await pilot.press("j")
        await wait_on_screen(pilot, lambda: "── completed" in pane_text(app), "the replayed outcome line")
        text = pane_text(app)
        assert "▸ shell" in text and "echo 2" in text
        assert "✓ exit 0" in text
        assert "DONE: the work is finished." in text
        assert text.count("▸ shell") == 3  # replay + live, without duplicates
        await quit_app(pilot, app)


async def test_pane_streams_live_records(project: Project) -> None:
    project.set_issues([{"id": "S-1", "title": "streams", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="cooperative", lines=2)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: "working until told to stop" in pane_text(app), "the live message")
        text = pane_text(app)
        assert text.count("▸ shell") == 2
        panes = app.main.query_one(StagePanes)
        assert panes.tab_label(panes.active_session_uuid() or "").startswith("plan #1")
        await quit_app(pilot, app)


async def test_restart_replays_history(project: Project) -> None:
    project.set_issues([{"id": "R-1", "title": "restart me", "state": "todo"}])
    path = workflow(project, lines=2)
    first = VikApp(supervisor(path), bell=False)
    async with first.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: run_status(first, "R-1") == "completed", "R-1 to complete")
        await quit_app(pilot, first)
    project.set_issues([{"id": "R-1", "title": "restart me", "state": "done"}])  # no stage re-runs it
    second = VikApp(supervisor(path), bell=False)
    async with second.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: rows(second) == ["R-1"], "the row after restart")
        await wait_on_screen(pilot, lambda: "── completed" in pane_text(second), "the replayed session")
        assert "DONE: the work is finished." in pane_text(second)
        assert history(second, "R-1")[0].attempt == 1
        await quit_app(pilot, second)


async def test_cancel_asks_then_cancels_a_cooperative_agent(project: Project) -> None:
    project.set_issues([{"id": "C-1", "title": "cancel me", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="cooperative")), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: run_status(app, "C-1") == "running", "C-1 to run")
        await wait_on_screen(pilot, lambda: app.main.check_action("cancel", ()) is True, "cancel to apply")
        await pilot.press("c")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("n")  # keep it
        await pilot.pause(0.2)
        assert run_status(app, "C-1") == "running"
        await pilot.press("c")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        started = time.monotonic()
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: run_status(app, "C-1") == "cancelled", "the cancel", timeout=10)
        assert time.monotonic() - started < 5
        await wait_on_screen(pilot, lambda: "── cancelled" in pane_text(app), "the outcome line")
        await quit_app(pilot, app)


async def test_cancel_of_a_hanging_agent_leaves_no_process(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_CHILD_PID", str(child_file))
    project.set_issues([{"id": "H-1", "title": "hangs", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="hang", grace=1)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(
            pilot,
            lambda: run_status(app, "H-1") == "running" and child_file.exists() and child_file.read_text().strip(),
            "the agent and its grandchild",
        )
        pid = current_session(app, "H-1").pid
        child = int(child_file.read_text())
        assert pid and not group_gone(pid)
        await pilot.press("c")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: run_status(app, "H-1") == "cancelled", "the cancel", timeout=15)
        assert group_gone(pid)
        assert dead(child)
        await quit_app(pilot, app)


async def test_retry_after_failure_with_r(project: Project) -> None:
    project.set_issues([{"id": "F-1", "title": "fails", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="turn_failed", max_attempts=1)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(
            pilot, lambda: run_status(app, "F-1") == "failed" and run_view(app, "F-1").gave_up, "the failure"
        )
        await wait_on_screen(
            pilot, lambda: any("needs a human" in (n.title or "") for n in app._notifications), "the toast"
        )
        await wait_on_screen(pilot, lambda: "── failed" in pane_text(app), "the failed outcome in the pane")
        assert "[error]" in pane_text(app)
        await wait_on_screen(pilot, lambda: app.main.check_action("retry", ()) is True, "retry to apply")
        await pilot.press("r")
        await wait_on_screen(pilot, lambda: len(history(app, "F-1")) == 2, "a second attempt")
        await wait_on_screen(pilot, lambda: len(app.main.query_one(StagePanes).tab_row.tabs) == 2, "a second tab")
        await wait_on_screen(pilot, lambda: run_status(app, "F-1") == "failed", "the second failure")
        await quit_app(pilot, app)


async def test_filter_with_slash_and_escape(project: Project) -> None:
    project.set_issues(
        [
            {"id": "AL-1", "title": "alpha work", "state": "backlog"},
            {"id": "BE-2", "title": "beta work", "state": "backlog"},
            {"id": "GA-3", "title": "gamma", "state": "review"},
        ]
    )
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        backlog_line = app.main.query_one("#backlog-line", Static)
        await wait_on_screen(pilot, lambda: "backlog 3" in str(backlog_line.render()), "the backlog summarised")
        assert rows(app) == []
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("b", "e", "t")
        await wait_on_screen(pilot, lambda: rows(app) == ["BE-2"], "the title filter")
        await pilot.press("backspace", "backspace", "backspace", "r", "e", "v")
        await wait_on_screen(pilot, lambda: rows(app) == ["GA-3"], "the state filter")
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: rows(app) == [], "the cleared filter")
        assert isinstance(app.focused, IssueTable)
        await pilot.press("b")
        await wait_on_screen(pilot, lambda: len(rows(app)) == 3, "the backlog listed")
        await quit_app(pilot, app)


async def test_j_and_k_are_typed_into_the_filter(project: Project) -> None:
    """j/k are priority keys (they move the list's cursor wherever the focus is) except in the
    filter box, where they are letters."""
    project.set_issues([{"id": "JO-1", "title": "jok", "state": "backlog"}])
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "j", "o", "k")
        box = app.main.query_one("#filter", Input)
        await wait_on_screen(pilot, lambda: rows(app) == ["JO-1"], "the filter typed with j and k")
        assert box.value == "jok"
        await pilot.press("escape")  # q would be typed too
        await quit_app(pilot, app)


async def test_pause_resume_and_poll_now(project: Project) -> None:
    project.set_issues([{"id": "P-1", "title": "idle", "state": "backlog"}])
    app = VikApp(supervisor(workflow(project, idle_sec=60)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: app.engine.snapshot().intake.status == IntakeStatus.IDLE, "the first poll")
        iterations = app.engine.snapshot().intake.iterations
        await pilot.press("f")
        await wait_on_screen(pilot, lambda: app.engine.snapshot().intake.iterations > iterations, "poll now")
        await pilot.press("p")
        await wait_on_screen(pilot, lambda: app.engine.snapshot().intake.paused, "pause")
        await wait_on_screen(
            pilot, lambda: "paused" in str(app.main.query_one("#status", Static).render()), "the header"
        )
        await pilot.press("f")  # says why it does not poll
        await wait_on_screen(pilot, lambda: any("paused" in n.message for n in app._notifications), "the reason")
        assert app.main.check_action("pause", ()) is False and app.main.check_action("resume", ()) is True
        await pilot.press("p")
        await wait_on_screen(pilot, lambda: not app.engine.snapshot().intake.paused, "resume")
        await quit_app(pilot, app)


async def test_help_lists_every_key(project: Project) -> None:
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")

        def help_text() -> str:  # "" until the screen is up and composed (its keys are there)
            if not isinstance(app.screen, HelpScreen):
                return ""
            return "\n".join(str(cell.render()) for cell in app.screen.query("#help-keys Static").results(Static))

        await wait_on_screen(pilot, lambda: "quit" in help_text().lower(), "the help screen's keys")
        text = help_text()
        for word in (
            "cancel",
            "Retry",
            "shell",
            "git diff",
            "Filter",
            "log pane",
            "Pause",
            "Poll",
            "session JSONL",
            "Quit",
        ):
            assert word.lower() in text.lower(), word
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")
        await quit_app(pilot, app)


async def test_log_pane_toggles_and_starts_collapsed_when_small(project: Project) -> None:
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.main.query_one("#log")
        await pilot.pause()
        assert not log.display
        await pilot.press("l")
        await pilot.pause()
        assert log.display
        await quit_app(pilot, app)
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.main.query_one("#log")
        await wait_on_screen(pilot, lambda: "intake" in "\n".join(line.text for line in log.lines), "the intake line")
        assert log.display
        await pilot.press("l")
        await pilot.pause()
        assert not log.display
        await quit_app(pilot, app)


async def test_quit_with_running_agents_asks_then_stops_them(project: Project) -> None:
    project.set_issues(
        [{"id": "Q-1", "title": "runs", "state": "todo"}, {"id": "Q-2", "title": "runs", "state": "todo"}]
    )
    app = VikApp(supervisor(workflow(project, mode="cooperative")), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(
            pilot,
            lambda: all(run_status(app, i) == "running" and history(app, i)[-1].pid for i in ("Q-1", "Q-2")),
            "two agents",
        )
        pids = [current_session(app, i).pid for i in ("Q-1", "Q-2")]
        await pilot.press("q")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "2 agents are running" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert run_status(app, "Q-1") == "running" and app.is_running
        await pilot.press("q")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question again")
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: app.engine_done, "the supervisor to stop", timeout=15)
    assert app.return_code == 0
    assert all(group_gone(pid) for pid in pids)


async def test_second_instance_exits_with_the_lock_message(project: Project) -> None:
    sup = supervisor(workflow(project))
    lock = WorkflowLock(sup.layout.lock_file)
    lock.acquire({"pid": 4242, "started_at": "earlier", "cwd": "/somewhere"})
    try:
        app = VikApp(sup, bell=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_on_screen(pilot, lambda: app.exit_message is not None, "the lock failure")
        assert app.return_code == 1
        assert "another vik-tui supervises this workflow (pid 4242" in (app.exit_message or "")
    finally:
        lock.release()


async def test_diagnostics_screen_for_a_broken_workflow(project: Project) -> None:
    data = base_workflow(project)
    data["issue"]["stages"]["plan"]["agent"] = "nobody"
    result = load_workflow(project.write(data))
    assert not result.ok
    app = DiagnosticsApp(result)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: findings_text(app), "the diagnostics")
        text = findings_text(app)
        assert "error" in text and "issue.stages.plan.agent" in text
        code = result.errors[0].code
        assert code in text
        await pilot.press("q")
    assert app.return_code == 1


async def test_shell_diff_and_session_path_keys(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)  # not inside tmux: `s` suspends, which run_test cannot
    project.set_issues([{"id": "W-1", "title": "workspace", "state": "todo"}])
    app = VikApp(supervisor(workflow(project)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: run_status(app, "W-1") == "completed", "W-1 to complete")
        await wait_on_screen(pilot, lambda: app.main.check_action("open_session", ()) is True, "a selected session")
        await pilot.press("o")
        session_file = current_session(app, "W-1").session_file
        shown = lambda: any(n.message.startswith(session_file) for n in app._notifications)  # noqa: E731
        await wait_on_screen(pilot, shown, "the path toast")
        await pilot.press("s")
        workdir = str(app.engine.workdir_of("W-1"))
        # run_test's driver cannot suspend: the dialog shows the command instead (never a traceback)
        dialog = await wait_on_screen(
            pilot, lambda: isinstance(app.screen, CommandScreen) and app.screen, "the shell command dialog"
        )
        assert dialog.why == NO_SUSPEND and dialog.command.startswith(f"cd {workdir} && ")
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, CommandScreen), "the dialog closing")
        await pilot.press("d")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff screen")
        diff_log = app.screen.query_one("#diff-log", Log)
        await wait_on_screen(
            pilot, lambda: diff_log.line_count >= 1 and diff_log.lines[0] != "loading…", "the diff text"
        )
        assert any("git" in line for line in diff_log.lines)
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, DiffScreen), "the diff to close")
        await quit_app(pilot, app)


async def test_command_palette_lists_applicable_actions(project: Project) -> None:
    project.set_issues([{"id": "K-1", "title": "palette", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="cooperative")), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: run_status(app, "K-1") == "running", "K-1 to run")
        await wait_on_screen(pilot, lambda: app.main.check_action("cancel", ()) is True, "cancel to apply")
        titles = {command.title for command in app.get_system_commands(app.main)}
        assert {"Cancel", "Shell", "Diff", "Pause", "Filter", "Help", "Quit"} <= titles
        assert "Retry" not in titles and "Resume" not in titles  # not applicable now
        await quit_app(pilot, app)


async def test_tab_switches_between_attempt_panes(project: Project) -> None:
    project.set_issues([{"id": "T-1", "title": "two attempts", "state": "todo"}])
    app = VikApp(supervisor(workflow(project, mode="turn_failed", max_attempts=2)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(
            pilot,
            lambda: len(history(app, "T-1")) == 2 and run_status(app, "T-1") == "failed",
            "two failed attempts",
            timeout=30,
        )
        panes = app.main.query_one(StagePanes)
        await wait_on_screen(pilot, lambda: len(panes.tab_row.tabs) == 2, "two tabs")
        first, second = (tab.key for tab in panes.tab_row.tabs)
        await wait_on_screen(pilot, lambda: panes.active_session_uuid() == second, "the newest pane")
        await pilot.press("tab")
        await wait_on_screen(pilot, lambda: panes.active_session_uuid() == first, "tab to the first attempt")
        assert panes.tab_label(first).startswith("plan #1") and panes.tab_label(second).startswith("plan #2")
        await wait_on_screen(pilot, lambda: "── failed" in pane_text(app), "its replay")
        await pilot.press("shift+tab")
        await wait_on_screen(pilot, lambda: panes.active_session_uuid() == second, "shift+tab back")
        await quit_app(pilot, app)


async def test_rejected_config_edit_shows_diagnostics(project: Project) -> None:
    path = workflow(project)
    app = VikApp(supervisor(path), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: app.engine.snapshot().intake.iterations >= 1, "the first poll")
        data = base_workflow(project)
        data["issue"]["stages"]["plan"]["agent"] = "nobody"
        project.write(data)
        app.engine.reload()  # what the file watcher calls on save
        await wait_on_screen(pilot, lambda: "unknown_agent" in findings_text(app), "the diagnostics over the app")
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, DiagnosticsScreen), "it to close")
        assert app.is_running
        await quit_app(pilot, app)


async def test_opening_a_pane_mid_stream_shows_every_record_once(project: Project) -> None:
    project.set_issues(
        [{"id": "M-0", "title": "idle", "state": "backlog"}, {"id": "M-1", "title": "streams", "state": "todo"}]
    )
    app = VikApp(supervisor(workflow(project, mode="cooperative", lines=400)), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")  # list the backlog issue M-0 too
        await wait_on_screen(
            pilot, lambda: run_status(app, "M-1") == "running" and rows(app) == ["M-0", "M-1"], "M-1 to run"
        )
        await pilot.press("j")  # select it while it is (likely) still streaming
        await wait_on_screen(pilot, lambda: app.main.selected == "M-1", "the selection")
        await wait_on_screen(pilot, lambda: "working until told to stop" in pane_text(app), "the last record")
        text = pane_text(app)
        assert text.count("▸ shell") == 400
        assert text.count("✓ exit 0") == 400
        await quit_app(pilot, app)
