"""The first list reaches the screen before the stages it dispatches are spawned.

Engine side: `Supervisor.before_first_dispatch` is awaited once, after the first good intake
and before its dispatch. App side: the app sets it, and by the time the engine dispatches, the
issue table already holds the listed issues.
"""

from __future__ import annotations

from conftest import Project, wait_on_screen
from test_ui_app import SIZE, quit_app, rows, supervisor, workflow

from vik_tui.engine import engine_events as ee
from vik_tui.ui.app import VikApp

ISSUES = [{"id": "A-1", "title": "first", "state": "todo"}, {"id": "B-2", "title": "second", "state": "todo"}]


async def test_engine_awaits_the_hook_once_before_the_first_dispatch(project: Project) -> None:
    project.set_issues(ISSUES)
    engine = supervisor(workflow(project, max_iterations=2, idle_sec=1))
    seen: list[tuple[int, int]] = []  # (intake iterations, runs) when the hook ran

    async def hook() -> None:
        view = engine.snapshot()
        seen.append((view.intake.iterations, sum(len(issue.runs) for issue in view.issues)))

    engine.before_first_dispatch = hook
    await engine.run()
    assert seen == [(1, 0)]  # once, after the first intake, before any stage was reserved
    assert {run.issue_id for run in engine.runs.values()} == {"A-1", "B-2"}


async def test_app_draws_the_list_before_the_first_dispatch(project: Project) -> None:
    project.set_issues(ISSUES)
    engine = supervisor(workflow(project))
    app = VikApp(engine, bell=False)
    app.first_list_wait = 120.0  # the ordering, not the cap: a loaded machine may take over 0.5 s to draw
    listed_at_dispatch: list[list[str]] = []

    def on_event(event: ee.EngineEvent) -> None:  # told synchronously, inside the dispatch
        if isinstance(event, ee.StageReserved) and not listed_at_dispatch:
            listed_at_dispatch.append(rows(app))

    engine.subscribe(on_event)
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: bool(listed_at_dispatch), "the first dispatch")
        assert listed_at_dispatch == [["A-1", "B-2"]]
        await quit_app(pilot, app)


async def test_the_engine_does_not_wait_for_the_screen_past_the_cap(project: Project) -> None:
    """However slow the first frame, the stages start once `first_list_wait` has passed."""
    project.set_issues(ISSUES)
    engine = supervisor(workflow(project))
    app = VikApp(engine, bell=False)
    app.first_list_wait = 0.01
    app._check_first_list = lambda: None  # type: ignore[method-assign]  # the list is never seen as drawn
    async with app.run_test(size=SIZE) as pilot:
        await wait_on_screen(pilot, lambda: len(engine.runs) == 2, "both stages dispatched")
        await quit_app(pilot, app)


def test_headless_supervisor_has_no_hook(project: Project) -> None:
    project.set_issues(ISSUES)
    assert supervisor(workflow(project)).before_first_dispatch is None
