"""Issue #18, item 1: a supervisor killed (kill -9, OOM) during `after_create` (a half-done
`git clone`) leaves a half-made workspace; the next start sets it aside (renamed, with the
reason beside it, not deleted) and makes it again, running `after_create` to its end."""

from __future__ import annotations

import shlex
from pathlib import Path

from chaos_helpers import HeadlessProcess, chaos_workflow, layout_of, read_pid, wait_until
from conftest import Project, process_running


def test_kill_9_during_after_create_sets_the_half_made_workspace_aside(project: Project, tmp_path: Path) -> None:
    flag, pidfile = tmp_path / "second-run", tmp_path / "hook.pid"
    wf = chaos_workflow(project, "complete")
    wf["loop"]["hook_timeout_sec"] = 600
    wf["issue"]["hooks"] = {
        "after_create": (
            f"if [ -e {shlex.quote(str(flag))} ]; then echo whole > checkout; "
            f"else echo half > partial; echo $$ > {shlex.quote(str(pidfile))}; exec sleep 600; fi"
        )
    }
    path = project.write(wf)
    first = HeadlessProcess(path)
    hook_pid = read_pid(pidfile)  # after_create is half-way
    first.kill()  # kill -9: no cleanup runs
    assert process_running(hook_pid)
    flag.touch()
    second = HeadlessProcess(path)
    finished = second.wait_event("stage_finished", timeout=60)
    assert second.wait() == 0, second.stderr()
    assert not process_running(hook_pid)  # the recovery sweep ended the old hook
    assert finished["state"] == "completed", finished
    root = layout_of(path).root
    workspace = root / "issues" / "C-1"
    assert (workspace / "checkout").read_text() == "whole\n"  # after_create ran again, to its end
    assert not (workspace / "partial").exists()
    aside = [p for p in (root / "set-aside").iterdir() if p.is_dir()]
    assert len(aside) == 1 and aside[0].name.startswith("C-1.")
    assert (aside[0] / "partial").read_text() == "half\n"  # kept for a person to look at
    reason = aside[0].with_name(aside[0].name + ".reason").read_text()
    assert "after_create began at" in reason and "did not finish" in reason
    warned = [e for e in second.named("log") if "set aside" in e["message"]]
    assert warned and warned[0]["level"] == "warning"
    wait_until(lambda: not (root / "service" / "after_create" / "C-1").exists(), what="the record removed")
