"""Issue #18, item 7: SIGTERM ends a pull command in progress (one that hangs, as a tracker
behind a dead network does): `stop` no longer waits for it, and nothing it started is left."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos_helpers import HeadlessProcess, chaos_workflow, read_pid
from conftest import Project, process_running

VIK = [sys.executable, "-m", "vik_tui"]


def test_sigterm_ends_a_hanging_pull(project: Project, tmp_path: Path) -> None:
    pidfile = tmp_path / "pull.pid"
    wf = chaos_workflow(project, "complete")
    wf["loop"]["pull_timeout_sec"] = 600
    wf["issues"]["pull"]["command"] = f"echo $$ > {shlex.quote(str(pidfile))}; exec sleep 600"
    sup = HeadlessProcess(project.write(wf))
    pull_pid = read_pid(pidfile)
    began = time.monotonic()
    sup.signal(signal.SIGTERM)
    assert sup.wait(timeout=20) == 0, sup.stderr()  # was: until the pull ended (pull_timeout_sec)
    assert time.monotonic() - began < 20
    assert not process_running(pull_pid)
    assert sup.named("supervisor_stopped")


def test_stop_command_ends_a_supervisor_whose_pull_hangs(project: Project, tmp_path: Path) -> None:
    pidfile = tmp_path / "pull.pid"
    wf = chaos_workflow(project, "complete")
    wf["loop"]["pull_timeout_sec"] = 600
    wf["issues"]["pull"]["command"] = f"echo $$ > {shlex.quote(str(pidfile))}; exec sleep 600"
    path = project.write(wf)
    started = subprocess.run([*VIK, "run", "-d", str(path)], capture_output=True, text=True, timeout=90)
    assert started.returncode == 0, started.stderr
    pull_pid = read_pid(pidfile)
    stop = subprocess.run([*VIK, "stop", str(path)], capture_output=True, text=True, timeout=90)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert not process_running(pull_pid)
