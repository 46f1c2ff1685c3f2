"""Issue #17 item 2: finished work stays finished across restarts. A stage that completed is
not started again by a new supervisor while its issue keeps the state; a move away and back
runs it again; a missing issue (an empty pull) is not a move; a retry on purpose runs it; an
unreadable record is said and costs nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Project, base_workflow
from engine_helpers import Harness

from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.completed import COMPLETED_FILE, WAITING_REASON
from vik_tui.engine.view import RunStatus

TODO = [{"id": "A-1", "title": "one", "state": "todo"}]


async def _one_cycle(workflow: Path) -> Harness:
    """A supervisor for one pull (max_iterations: 1), run until it ends."""
    h = Harness(workflow).start()
    assert await h.finish(60) == 0
    return h


def _reserved(h: Harness) -> list[ee.StageReserved]:
    return h.named(ee.StageReserved, issue="A-1", stage="plan")


async def test_a_restart_leaves_a_completed_stage_alone(project: Project) -> None:
    project.set_issues(TODO)
    workflow = project.write(base_workflow(project))
    first = await _one_cycle(workflow)
    assert [e.state for e in first.named(ee.StageFinished)] == ["completed"]
    record = json.loads((first.supervisor.layout.service_dir / COMPLETED_FILE).read_text())
    assert record == {"A-1": {"plan": "todo"}}

    second = await _one_cycle(workflow)  # the issue is still in `todo`
    assert _reserved(second) == []
    (issue,) = second.supervisor.snapshot().issues
    (run,) = issue.runs
    assert (run.status, run.reason) == (RunStatus.COMPLETED, WAITING_REASON)


async def test_a_move_away_and_back_runs_the_stage_again(project: Project) -> None:
    project.set_issues(TODO)
    workflow = project.write(base_workflow(project))
    await _one_cycle(workflow)
    project.set_issues([dict(TODO[0], state="review")])
    away = await _one_cycle(workflow)
    assert _reserved(away) == []
    assert not (away.supervisor.layout.service_dir / COMPLETED_FILE).read_text().strip("{}\n ")
    project.set_issues(TODO)
    back = await _one_cycle(workflow)
    assert [e.state for e in back.named(ee.StageFinished, stage="plan")] == ["completed"]


async def test_an_empty_pull_between_two_full_ones_is_not_a_move(project: Project) -> None:
    project.set_issues(TODO)
    workflow = project.write(base_workflow(project))
    await _one_cycle(workflow)
    project.set_issues([])
    await _one_cycle(workflow)
    project.set_issues(TODO)
    again = await _one_cycle(workflow)
    assert _reserved(again) == []


async def test_a_retry_after_a_restart_runs_it_on_purpose(project: Project) -> None:
    project.set_issues(TODO)
    workflow = project.write(base_workflow(project))
    await _one_cycle(workflow)
    h = Harness(workflow).start()
    await h.wait_event(ee.Intake)
    await h.wait_for(lambda: ("A-1", "plan") in h.supervisor.runs)
    assert h.supervisor.retry("A-1", "plan") == "retrying"
    finished = await h.wait_event(ee.StageFinished, stage="plan")
    assert finished.state == "completed"
    assert await h.finish(60) == 0
    assert len(_reserved(h)) == 1


async def test_an_unreadable_record_is_said_and_the_stage_runs(project: Project) -> None:
    project.set_issues(TODO)
    workflow = project.write(base_workflow(project))
    first = await _one_cycle(workflow)
    (first.supervisor.layout.service_dir / COMPLETED_FILE).write_text("{not json")
    second = await _one_cycle(workflow)
    warnings = [e.message for e in second.named(ee.Log, level="warning") if COMPLETED_FILE in e.message]
    assert warnings and "completed stages may run again" in warnings[0], warnings
    assert len(_reserved(second)) == 1
    record = json.loads((second.supervisor.layout.service_dir / COMPLETED_FILE).read_text())
    assert record == {"A-1": {"plan": "todo"}}  # written afresh
