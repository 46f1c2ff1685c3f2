"""Issue #17 item 3: one state at a time per workspace. The agent moves its issue as its last
act and keeps talking, and its `after_run` is slow: the next state's stages wait until both have
ended, the view says "waiting for plan to finish" meanwhile, and sibling stages of the new state
still start together."""

from __future__ import annotations

from pathlib import Path

from conftest import FAKE_CODEX, Project, base_workflow
from engine_helpers import Harness

from vik_tui.engine import engine_events as ee


def _workflow(project: Project, log: Path) -> Path:
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"] = {
        "mover": {
            "runtime": "codex",
            "model": "m",
            "command": str(FAKE_CODEX),
            "args": {"--mode": "talk", "--sleep": 1.5, "--move-to": f"{project.tracker}:A-1:work"},
        },
        "worker": {"runtime": "codex", "model": "m", "command": str(FAKE_CODEX), "args": {}},
    }
    note = f">> {log}"
    wf["issue"]["stages"] = {
        "plan": {
            "when": {"state": "todo"},
            "agent": "mover",
            "prompt": "plan",
            # slow, and it writes the shared checkout: nothing of the next state may run meanwhile
            "hooks": {"after_run": f"echo plan-after-run-start {note}; sleep 2; echo plan-after-run-end {note}"},
        },
        "implement": {"when": {"state": "work"}, "agent": "worker", "prompt": "x",
                      "hooks": {"before_run": f"echo implement-start {note}"}},
        "docs": {"when": {"state": "work"}, "agent": "worker", "prompt": "x",
                 "hooks": {"before_run": f"echo docs-start {note}"}},
    }  # fmt: skip
    return project.write(wf)


async def test_a_new_state_waits_for_the_old_stage_and_its_after_run(project: Project, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    project.set_issues([{"id": "A-1", "title": "one", "state": "todo"}])
    h = Harness(_workflow(project, log)).start()

    def waiting() -> str | None:
        views = [i for i in h.supervisor.snapshot().issues if i.id == "A-1"]
        return views[0].waiting if views and views[0].state == "work" else None

    assert await h.wait_for(waiting, 60) == "waiting for plan to finish"
    assert h.named(ee.StageReserved, stage="implement") == []
    await h.wait_event(ee.StageFinished, 60, stage="implement")
    await h.wait_event(ee.StageFinished, 60, stage="docs")
    await h.stop()
    lines = log.read_text().split()
    assert lines[:2] == ["plan-after-run-start", "plan-after-run-end"], lines
    assert sorted(lines[2:]) == ["docs-start", "implement-start"]  # siblings, after the old state ended
    reserved = [e.stage for e in h.events if isinstance(e, ee.StageReserved | ee.StageFinished)]
    assert reserved.index("implement") > reserved.index("plan", 1)  # plan's finish comes first
    assert abs(reserved.index("implement") - reserved.index("docs")) == 1  # reserved together
    assert any("A-1 is now work: waiting for plan to finish" in e.message for e in h.named(ee.Log))
    assert all(i.waiting is None for i in h.supervisor.snapshot().issues)
