"""The UI's side of #21 with a real Supervisor: drain by key (header `draining · N running`,
`p` resumes), the palette's Drain, the why-idle line of an idle issue, and OSC 9 / 777
notifications (through tmux) for attention events only."""

from __future__ import annotations

import scripted_engine as scripted
from conftest import Project, wait_on_screen
from test_ui_app import SIZE, quit_app, run_status, supervisor, workflow
from textual.widgets import Static

from vik_tui.engine.engine_events import DrainFinished, IntakeFailed, RetryGivenUp, StageFinished
from vik_tui.engine.view import RunStatus
from vik_tui.ui.app import VikApp
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.osc import notification


def header(app: VikApp) -> str:
    return str(app.main.query_one("#status", Static).render())


def info(app: VikApp) -> str:
    return str(app.main.query_one("#pane-info", Static).render())


async def test_drain_key_shows_draining_in_the_header_and_p_resumes(project: Project) -> None:
    project.set_issues(
        [{"id": "D-1", "title": "first", "state": "todo"}, {"id": "D-2", "title": "next", "state": "todo"}]
    )
    path = workflow(project, mode="cooperative")
    text = path.read_text().replace("max_issue_concurrency: 4", "max_issue_concurrency: 1")
    path.write_text(text)
    app = VikApp(supervisor(path), bell=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: run_status(app, "D-1") == "running", "D-1 to run")
        titles = {command.title for command in app.get_system_commands(app.main)}
        assert "Drain" in titles
        await pilot.press("D")
        await wait_on_screen(pilot, lambda: "draining · 1 running" in header(app), "the draining header")
        assert "Drain" not in {command.title for command in app.get_system_commands(app.main)}
        await pilot.press("j")  # D-2: idle, and the pane says why
        await wait_on_screen(pilot, lambda: "why idle:" in info(app) and "draining" in info(app), "why D-2 waits")
        await pilot.press("p")  # resume cancels the drain
        await wait_on_screen(pilot, lambda: "running 1/1" in header(app), "the drain cancelled")
        assert run_status(app, "D-2") is None  # still one slot: D-2 waits for it, now explained as such
        await wait_on_screen(pilot, lambda: "waiting for a slot" in info(app), "the slot explanation")
        await quit_app(pilot, app)


def test_osc_sequences_for_plain_terminals_urxvt_and_through_tmux() -> None:
    plain = notification("vik-tui w.yml", "A/plan given up\x1b]0;evil\x07", {"TERM": "xterm-256color"})
    assert plain == "\x1b]9;vik-tui w.yml: A/plan given up ]0;evil \x07"  # no control character gets through
    urxvt = notification("vik-tui w.yml", "host down", {"TERM": "rxvt-unicode-256color"})
    assert urxvt == "\x1b]777;notify;vik-tui w.yml;host down\x07"
    tmux = notification("t", "b", {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,1,0"})
    assert tmux == "\x1bPtmux;\x1b\x1b]9;t: b\x07\x1b\\"


async def test_attention_events_notify_the_desktop_and_completions_do_not() -> None:
    engine = scripted.SCENARIOS["idle"]()
    app = VikApp(engine, clock=FrozenClock(scripted.NOW), bell=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        engine.emit(
            StageFinished(
                issue="A",
                stage="plan",
                attempt=1,
                state=RunStatus.COMPLETED,
                reason="completed",
                exit_code=0,
                signal=None,
                tokens={},
                session_file="/s/a.jsonl",
            )
        )
        engine.emit(RetryGivenUp(issue="B", stage="plan", attempts=3, reason="exited with code 1"))
        engine.emit(DrainFinished(retries_kept=0))
        await wait_on_screen(pilot, lambda: len(app.desktop_notifications) == 2, "two notifications")
        assert "B/plan given up after 3 attempts" in app.desktop_notifications[0]
        assert "drain finished" in app.desktop_notifications[1]


async def test_intake_failing_for_n_cycles_notifies_the_desktop_once() -> None:
    """The engine marks the failure that makes the streak reach `notify.intake_failures`; the UI
    sends the desktop notification for that one only (the toast says every new error)."""
    engine = scripted.SCENARIOS["idle"]()
    app = VikApp(engine, clock=FrozenClock(scripted.NOW), bell=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        for failures in (1, 2, 3):
            engine.emit(
                IntakeFailed(
                    error="pull exited with code 3",
                    exit_code=3,
                    stderr="",
                    iteration=failures,
                    failures=failures,
                    attention=failures == 2,
                )
            )
        engine.emit(DrainFinished(retries_kept=0))  # comes after them all: once it is sent, they were seen
        await wait_on_screen(pilot, lambda: any("drain finished" in n for n in app.desktop_notifications), "the last")
        assert len(app.desktop_notifications) == 2
        assert "intake failed 2 times in a row: pull exited with code 3" in app.desktop_notifications[0]
