"""Issue #18, item 8: an issue missing from one pull (an empty answer between two full ones)
does not forget its completed stages: they are not started again."""

from __future__ import annotations

from chaos_helpers import chaos_workflow
from conftest import Project
from engine_helpers import Harness

from vik_tui.engine.engine_events import Intake, StageFinished, StageReserved, StageStarted


async def test_an_empty_pull_between_two_full_ones_does_not_rerun_finished_work(project: Project) -> None:
    wf = chaos_workflow(project, "complete", issues=20)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 60
    full = project.tracker.read_text()
    h = Harness(project.write(wf)).start()
    try:
        await h.wait_for(lambda: len(h.named(StageFinished)) == 20, timeout=60)
        assert all(e.state == "completed" for e in h.named(StageFinished))
        for answer in ("[]", full):
            project.set_issues(answer)
            cycles = len(h.named(Intake))
            h.supervisor.poll_now()
            await h.wait_for(lambda: len(h.named(Intake)) > cycles)  # noqa: B023 - awaited in this iteration
        assert h.named(Intake)[-1].issues == 20
        assert len(h.named(StageReserved)) == 20  # nothing started again (dispatch ran after each intake)
    finally:
        await h.stop()
    assert len(h.named(StageStarted)) == 20


async def test_an_issue_that_left_the_state_and_came_back_runs_again(project: Project) -> None:
    """vik's rule is kept: a move out of the state and back runs the stage again."""
    wf = chaos_workflow(project, "complete")
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 60
    h = Harness(project.write(wf)).start()
    await h.wait_event(StageFinished)
    for state in ("review", "todo"):
        project.set_issues([{"id": "C-1", "title": "chaos 1", "state": state}])
        cycles = len(h.named(Intake))
        h.supervisor.poll_now()
        await h.wait_for(lambda: len(h.named(Intake)) > cycles)  # noqa: B023 - awaited in this iteration
    await h.wait_for(lambda: len(h.named(StageFinished)) == 2)
    assert len(h.named(StageStarted)) == 2
    await h.stop()
