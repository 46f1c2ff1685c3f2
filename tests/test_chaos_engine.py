"""Issue #9, items 6-8: hot reload drops retries of a removed stage, one supervisor per real
workflow file (symlinks included), one `reconcile_pending` per stop."""

from __future__ import annotations

import pytest
from chaos_helpers import chaos_workflow
from conftest import FAKE_CODEX, Project
from engine_helpers import Harness

from vik_tui.engine.engine_events import (
    AgentEvents,
    Intake,
    ReconcilePending,
    RetryDropped,
    RetryScheduled,
    StageFinished,
    StageStarted,
)
from vik_tui.engine.service.state import AlreadyRunning
from vik_tui.engine.view import RunStatus


async def test_reload_drops_pending_retries_of_a_removed_stage(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["agents"]["codex"] = {
        "runtime": "codex",
        "model": "m",
        "command": str(FAKE_CODEX),
        "args": {"--mode": "exit_nonzero"},
    }
    wf["loop"]["retry"] = {"max_attempts": 6, "backoff_sec": 1, "max_backoff_sec": 1}
    h = Harness(project.write(wf)).start()
    await h.wait_event(RetryScheduled)
    wf["issue"]["stages"] = {"review": {"when": {"state": "review"}, "agent": "codex", "prompt": "look"}}
    project.write(wf)
    assert h.supervisor.reload().ok
    dropped = await h.wait_event(RetryDropped)
    assert dropped.reason == "stage removed"
    assert h.supervisor.runs[("C-1", "plan")].status == RunStatus.FAILED
    await h.finish()
    assert len(h.named(StageStarted)) == 1  # no attempt after the stage was removed
    assert "no longer in the workflow" in h.supervisor.retry("C-1", "plan")


async def test_the_same_workflow_through_a_symlink_is_locked_once(project: Project) -> None:
    wf = chaos_workflow(project, "hang")
    real = project.write(wf)
    other_dir = project.root.parent / "elsewhere"
    other_dir.mkdir()
    link = other_dir / "workflow.yml"
    link.symlink_to(real)
    first = Harness(real).start()
    await first.wait_event(StageStarted)
    second = Harness(link)
    with pytest.raises(AlreadyRunning):
        await second.supervisor.run()
    await first.stop()


async def test_reconcile_pending_once_while_a_stubborn_agent_stops(project: Project) -> None:
    wf = chaos_workflow(project, "hang", stubborn=True)
    wf["loop"].update(max_iterations=None, cancel_grace_sec=3, reconcile=True, reconcile_grace_sec=0.01)
    wf["issues"]["pull"]["idle_sec"] = 60
    h = Harness(project.write(wf)).start()
    await h.wait_event(AgentEvents)  # the agent is up and ignores SIGTERM now
    project.set_issues([{"id": "C-1", "title": "chaos 1", "state": "done"}])
    h.supervisor.poll_now()
    await h.wait_event(ReconcilePending)
    run = h.supervisor.runs[("C-1", "plan")]
    await h.wait_for(lambda: run.abort is not None)  # stopping: SIGTERM sent, ignored for 3 s
    cycles = len(h.named(Intake))
    h.supervisor.poll_now()
    await h.wait_for(lambda: len(h.named(Intake)) > cycles)
    assert run.active  # still stopping when that intake ran
    finished = await h.wait_event(StageFinished)
    assert finished.state == "cancelled"
    assert len(h.named(ReconcilePending)) == 1
    await h.stop()
