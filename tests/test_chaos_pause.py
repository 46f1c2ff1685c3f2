"""Issue #18, item 4: a pause of the supervisor (SIGSTOP: a suspended laptop, a stopped
container, a debugger) longer than `stall_timeout_sec` is not taken for a stall of its agents."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from chaos_helpers import HeadlessProcess, chaos_workflow, last_outcome
from conftest import Project

STALL_SEC = 3


def test_a_stopped_supervisor_does_not_kill_its_healthy_agents_as_stalled(project: Project) -> None:
    wf = chaos_workflow(project, "talk", issues=3, seconds=6)
    wf["loop"]["stall_timeout_sec"] = STALL_SEC
    sup = HeadlessProcess(project.write(wf))
    for issue in ("C-1", "C-2", "C-3"):
        sup.wait_event("stage_started", issue=issue)
    sup.wait_event("intake")
    sup.signal(signal.SIGSTOP)
    try:
        time.sleep(STALL_SEC + 2)  # the scenario itself: a pause longer than the stall limit
    finally:
        sup.signal(signal.SIGCONT)
    assert sup.wait(timeout=60) == 0, sup.stderr()
    finished = sup.named("stage_finished")
    assert len(finished) == 3
    for event in finished:
        assert event["state"] == "completed", event
        outcome = last_outcome(Path(event["session_file"]))
        assert outcome["state"] == "completed", outcome
