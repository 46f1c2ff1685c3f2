"""Issue #18, item 11: a prompt file that blocks (a FIFO, as a hung network mount would) freezes
nothing: it is refused as "not a regular file", by the stage and by doctor, and SIGTERM works."""

from __future__ import annotations

import os
import subprocess
import sys

from chaos_helpers import HeadlessProcess, chaos_workflow
from conftest import Project

VIK = [sys.executable, "-m", "vik_tui"]


def _fifo_workflow(project: Project) -> dict[str, object]:
    os.mkfifo(project.root / "prompt.md")
    wf = chaos_workflow(project, "talk", issues=2, seconds=3)
    wf["issue"]["stages"]["review"] = {"when": {"state": "todo"}, "agent": "codex", "prompt_file": "prompt.md"}
    return wf


def test_a_fifo_prompt_file_fails_its_stage_and_freezes_nothing(project: Project) -> None:
    sup = HeadlessProcess(project.write(_fifo_workflow(project)))
    refused = sup.wait_event("stage_finished", stage="review", timeout=30)
    assert refused["state"] == "failed"
    assert "prompt.md is not a regular file (a FIFO)" in refused["reason"], refused
    # the other stage streamed on meanwhile, to its end
    assert sup.wait(timeout=60) == 0, sup.stderr()
    plans = sup.named("stage_finished", stage="plan")
    assert len(plans) == 2 and all(e["state"] == "completed" for e in plans), plans


def test_doctor_says_a_fifo_is_not_a_regular_file(project: Project) -> None:
    path = project.write(_fifo_workflow(project))
    out = subprocess.run([*VIK, "doctor", str(path)], capture_output=True, text=True, timeout=60)
    assert "prompt file is not a regular file (a FIFO)" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "not found" not in out.stdout + out.stderr
