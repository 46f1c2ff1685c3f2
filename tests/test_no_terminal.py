"""Issue #17 item 4: without a terminal there is no UI. `vik-tui WORKFLOW` and `vik-tui demo`
(without --headless) with stdin at EOF or stdout into a pipe print one line saying so and what to
run instead, exit 2, and start nothing (no pull, no agent, no demo project). Issue #17 item 1:
`vik-tui` where there is no workflow says how to get one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Project, base_workflow

VIK = [sys.executable, "-m", "vik_tui"]
REPO = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([*VIK, *args], stdin=stdin, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def _marked_workflow(project: Project) -> tuple[Path, Path]:
    marker = project.root / "pulled"
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = f"touch {marker}; {project.pull_command}"
    return project.write(wf), marker


def test_the_ui_without_a_terminal_says_so_and_starts_nothing(project: Project) -> None:
    workflow, marker = _marked_workflow(project)
    proc = _run(["--no-watch", str(workflow)], project.root)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "stdin and stdout are not a terminal" in lines[0]
    assert f"vik-tui run {workflow}" in lines[0]
    assert proc.stdout == ""  # no escape codes
    assert not marker.exists()  # the pull never ran
    assert not (project.root / ".vik").exists()  # nothing written under the workspace home


def test_stdout_into_a_pipe_alone_is_enough_to_refuse(project: Project) -> None:
    workflow, marker = _marked_workflow(project)
    main, follower = os.openpty()  # stdin is a real terminal, stdout a pipe
    try:
        proc = _run([str(workflow)], project.root, stdin=follower)
    finally:
        os.close(follower)
        os.close(main)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"vik-tui: stdout is not a terminal, so there is no UI to show; run `vik-tui run {workflow}` instead"
    ]
    assert not marker.exists()


def test_the_demo_without_a_terminal_points_at_headless(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    proc = _run(["demo", "--dir", str(demo)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "vik-tui: stdin and stdout are not a terminal, so there is no UI to show; run `vik-tui demo --headless` instead"
    ]
    assert not demo.exists()  # not even the project was written


def test_no_workflow_here_says_what_to_do(tmp_path: Path) -> None:
    proc = _run([], tmp_path)
    assert proc.returncode == 2
    assert "vik-tui init" in proc.stderr and "vik-tui demo" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
