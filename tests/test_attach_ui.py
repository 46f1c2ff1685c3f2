"""The attached UI's own behaviour on a scripted engine (the end-to-end tests against a real
supervisor are in test_attach.py): the header names the supervisor, `q` detaches without a
question, `Q` stops the supervisor after asking, `s` shows the command when the plan cannot run
here; and the in-process quit question tells how to keep agents running next time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scripted_engine as scripted
from conftest import FAKE_CODEX, Project, base_workflow, wait_on_screen
from test_ui_snapshots import settled

from vik_tui.config.loader import load_workflow
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.view import Terminal
from vik_tui.ui.app import VikApp
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.engine_api import Attached
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.screens.command import CommandScreen
from vik_tui.ui.screens.confirm import ConfirmScreen
from vik_tui.ui.widgets.status_line import StatusLine


class ScriptedAttached(scripted.ScriptedEngine):
    """The busy scenario, seen through an attached client (what `AttachedEngine` adds)."""

    def __init__(self, here: bool = True) -> None:
        base = scripted.busy_engine()
        super().__init__(base.snapshot(), base.records, base.events)
        self.on_change: Any = None
        self.note = "attached to pid 4242"
        self.here = here

    def attachment(self) -> str:
        return self.note

    def stop_supervisor(self) -> None:
        self.calls.append(("stop_supervisor",))
        self._stopped.set()

    async def shell_plan(self, issue_id: str) -> Terminal:
        self.calls.append(("shell_plan", issue_id))
        return Terminal(("/bin/zsh",), Path(scripted.ROOT) / "issues" / issue_id, f"a shell in {issue_id}")

    def runs_here(self, plan: Terminal) -> bool:
        return self.here

    def stop(self, reason: str = "detached") -> None:  # type: ignore[override]
        self.calls.append(("stop",))
        self._stopped.set()


def attached_app(engine: ScriptedAttached) -> VikApp:
    return VikApp(engine, clock=FrozenClock(scripted.NOW), bell=False, glyphs=UNICODE)


def test_scripted_attached_is_attached() -> None:
    assert isinstance(ScriptedAttached(), Attached)
    assert not isinstance(scripted.busy_engine(), Attached)


def test_attached_header(snap_compare: Any) -> None:
    assert snap_compare(attached_app(ScriptedAttached()), terminal_size=(140, 30), run_before=settled)


def test_attached_header_when_the_supervisor_is_gone(snap_compare: Any) -> None:
    engine = ScriptedAttached()
    engine.note = "supervisor gone — reconnecting…"
    assert snap_compare(attached_app(engine), terminal_size=(140, 30), run_before=settled)


async def test_q_detaches_without_asking() -> None:
    engine = ScriptedAttached()
    app = attached_app(engine)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.view is not None, "the first frame")
        header = str(app.main.query_one(StatusLine).render())
        assert "attached to pid 4242" in header
        await pilot.press("q")
        await wait_on_screen(pilot, lambda: ("stop",) in engine.calls, "the detach")
    assert engine.calls == [("stop",)]  # detached at once: no question, the supervisor is not stopped
    assert app.return_code == 0


async def test_shift_q_stops_the_supervisor_after_asking() -> None:
    engine = ScriptedAttached()
    app = attached_app(engine)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.view is not None, "the first frame")
        await pilot.press("Q")
        dialog = await wait_on_screen(
            pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "the question"
        )
        assert "Stop the supervisor and its 3 running agents?" in dialog.question
        await pilot.press("n")  # kept
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the answer")
        assert ("stop_supervisor",) not in engine.calls
        await pilot.press("Q")
        await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question again")
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: ("stop_supervisor",) in engine.calls, "the stop")
    assert ("stop",) not in engine.calls  # stopping is not detaching


async def test_shift_q_does_nothing_in_process() -> None:
    engine = scripted.busy_engine()
    app = VikApp(engine, clock=FrozenClock(scripted.NOW), bell=False, glyphs=UNICODE)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.view is not None, "the first frame")
        assert app.main.check_action("stop_supervisor", ()) is False
        await pilot.press("Q")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert ("stop",) not in engine.calls


async def test_shell_elsewhere_shows_the_command() -> None:
    engine = ScriptedAttached(here=False)
    app = attached_app(engine)
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.view is not None, "the first frame")
        await pilot.press("s")
        dialog = await wait_on_screen(pilot, lambda: isinstance(app.screen, CommandScreen) and app.screen, "the dialog")
        selected = app.main.selected
        assert dialog.command == f"cd {scripted.ROOT}/issues/{selected} && /bin/zsh"
        await pilot.press("escape")
        await wait_on_screen(pilot, lambda: not isinstance(app.screen, CommandScreen), "the dialog closing")


async def test_in_process_quit_question_says_how_to_keep_agents_running(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    path = project.write(wf)
    result = load_workflow(path)
    assert result.workflow is not None
    supervisor = Supervisor(result.workflow, result.path)
    app = VikApp(supervisor, bell=False, load_history=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_on_screen(pilot, lambda: supervisor.snapshot().active_run_count, "the agent running", timeout=60)
        await pilot.press("q")
        dialog = await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "quit?")
        assert "1 agent is running; stop it and quit?" in dialog.question
        assert f"vik-tui run -d {path}" in dialog.question and f"`vik-tui {path}` attaches" in dialog.question
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: app.engine_done, "the engine to stop", timeout=60)
    assert FAKE_CODEX.exists()
