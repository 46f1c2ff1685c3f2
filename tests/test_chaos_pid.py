"""Issue #18, item 6: a pid reused after a kill -9 is not the supervisor. state.json names the
process by pid *and* start time; `status` says stale, `run -d` starts, and `stop` signals nobody."""

from __future__ import annotations

import json
import subprocess
import sys

from chaos_helpers import HeadlessProcess, chaos_workflow, layout_of, wait_until
from conftest import Project, process_running

VIK = [sys.executable, "-m", "vik_tui"]


def test_a_stranger_with_the_dead_supervisors_pid_is_not_taken_for_it(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["loop"]["max_iterations"] = None
    path = project.write(wf)
    state_file = layout_of(path).state_file
    sup = HeadlessProcess(path)
    sup.wait_event("stage_finished")
    sup.kill()  # kill -9: state.json stays, naming a dead pid
    stranger = subprocess.Popen(["sleep", "600"])  # an unrelated process...
    try:
        state = json.loads(state_file.read_text())
        state["pid"] = stranger.pid  # ...that the kernel gave the dead supervisor's pid
        state_file.write_text(json.dumps(state, indent=2))

        status = subprocess.run([*VIK, "status", str(path)], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "status: stale" in status.stdout, status.stdout

        stop = subprocess.run([*VIK, "stop", str(path)], capture_output=True, text=True, timeout=60)
        assert stop.returncode == 0, stop.stderr
        assert process_running(stranger.pid)  # not sent SIGTERM
        assert stranger.poll() is None
        assert not state_file.exists()  # the stale file was cleared

        state_file.write_text(json.dumps(state, indent=2))  # stale again: `run -d` is not refused
        started = subprocess.run([*VIK, "run", "-d", str(path)], capture_output=True, text=True, timeout=90)
        assert started.returncode == 0, started.stderr
        new_pid = wait_until(lambda: json.loads(state_file.read_text())["pid"] != stranger.pid, what="new state")
        assert new_pid
        stopped = subprocess.run([*VIK, "stop", str(path)], capture_output=True, text=True, timeout=90)
        assert stopped.returncode == 0, stopped.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
