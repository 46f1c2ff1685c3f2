"""Issue #9, "closing the terminal loses the run": SIGHUP is a clean stop like SIGTERM.

The real app runs in a pane of a private tmux server; killing the pane hangs its terminal up.
Agents that ignore SIGTERM must still be gone afterwards, and every session file must end with
the outcome `cancelled` / `terminal closed`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from chaos_helpers import REPO, HeadlessProcess, chaos_workflow, last_outcome, session_files, wait_until
from conftest import Project, process_running

from vik_tui.engine.service.stop_signals import TERMINAL_CLOSED


def _agents_started(runs: Path, count: int) -> list[int]:
    if not runs.exists():
        return []
    pids = [int(line.split()[1]) for line in runs.read_text().splitlines() if line.startswith("start")]
    return pids if len(pids) >= count else []


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_killing_the_tmux_pane_stops_every_agent_and_writes_outcomes(project: Project, tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    wf = chaos_workflow(project, "hang", issues=2, pidfile=str(runs), stubborn=True)
    workflow = project.write(wf)
    socket = f"vik-chaos-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(REPO)

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=20, env=env)

    try:
        started = tmux(
            "new-session", "-d", "-s", "vik", "-x", "120", "-y", "30",
            sys.executable, "-m", "vik_tui", "--no-watch", "--no-bell", str(workflow),
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        app_pid = int(tmux("display-message", "-p", "-t", "vik", "#{pane_pid}").stdout)
        agents = wait_until(lambda: _agents_started(runs, 2), 60, "both agents running")
        assert all(process_running(pid) for pid in agents)
        tmux("kill-pane", "-t", "vik")  # the terminal closes: SIGHUP
        wait_until(lambda: not process_running(app_pid), 60, "the app to exit")
        assert not any(process_running(pid) for pid in agents)
        files = session_files(workflow)
        assert len(files) == 2
        for path in files:
            outcome = last_outcome(path)
            assert (outcome["state"], outcome["reason"]) == ("cancelled", TERMINAL_CLOSED), path
    finally:
        tmux("kill-server")


def test_sighup_stops_headless_cleanly(project: Project, tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    wf = chaos_workflow(project, "hang", pidfile=str(runs), stubborn=True)
    sup = HeadlessProcess(project.write(wf))
    try:
        started = sup.wait_event("stage_started")
        wait_until(lambda: _agents_started(runs, 1), 30, "the agent running")
        sup.signal(signal.SIGHUP)
        finished = sup.wait_event("stage_finished")
        assert (finished["state"], finished["reason"]) == ("cancelled", TERMINAL_CLOSED)
        assert sup.wait() == 0
        assert not process_running(started["pid"])
        assert last_outcome(Path(started["session_file"]))["reason"] == TERMINAL_CLOSED
    finally:
        sup.kill()
