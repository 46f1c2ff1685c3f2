"""Regenerate screenshots/*.svg from the real app running the built-in demo.

    python scripts/screenshots.py

The demo runs for real (real supervisor, real simulated agents, real workspaces); the app is
driven headless with Pilot at 130×36, and each SVG is taken once the screen shows what it is
meant to show.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from vik_tui.config.loader import load_workflow
from vik_tui.demo.project import write_demo_project
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.view import RunStatus
from vik_tui.ui.app import VikApp
from vik_tui.ui.screens.diff import DiffScreen
from vik_tui.ui.screens.help import HelpScreen

OUT = Path(__file__).resolve().parents[1] / "screenshots"
SIZE = (130, 36)


async def wait_for(pilot: Any, condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.1)


def running(supervisor: Supervisor) -> int:
    return sum(1 for r in supervisor.runs.values() if r.status == RunStatus.RUNNING)


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workflow = write_demo_project(Path(tmp) / "demo", speed=1.5)
        result = load_workflow(workflow)
        assert result.ok and result.workflow is not None
        supervisor = Supervisor(result.workflow, result.path)
        app = VikApp(supervisor, bell=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: running(supervisor) >= 3, "three running stages")
            await wait_for(
                pilot,
                lambda: any(s.events > 8 for r in supervisor.runs.values() for s in r.sessions),
                "a session with some output",
            )
            await pilot.pause(1.0)
            app.save_screenshot("main-busy.svg", str(OUT))
            await pilot.press("l")  # hide the log: the pane gets the room
            await wait_for(
                pilot,
                lambda: any(r.stage == "implement" and r.status == RunStatus.RUNNING for r in supervisor.runs.values()),
                "an implement stage",
            )
            issue = next(
                r.issue_id for r in supervisor.runs.values() if r.stage == "implement" and r.status == RunStatus.RUNNING
            )
            for _ in range(10):
                if app.main.selected == issue:
                    break
                await pilot.press("j")
            await pilot.pause(2.0)
            app.save_screenshot("pane-streaming.svg", str(OUT))
            await wait_for(pilot, lambda: (supervisor.workdir_of(issue) / "NOTES.md").exists(), "a file edit")
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff view")
            await pilot.pause(1.0)
            app.save_screenshot("diff.svg", str(OUT))
            await pilot.press("escape")
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
            await pilot.pause(0.5)
            app.save_screenshot("help.svg", str(OUT))
            await pilot.press("escape")
            supervisor.stop()
            await wait_for(pilot, lambda: app.engine_done, "the supervisor to stop")
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} to {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
