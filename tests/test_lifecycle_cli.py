"""vik's lifecycle commands as real processes: `run` (foreground), `run -d`, `status`, `stop`,
`restart`, `uninstall`, and service/state.json (vik_compare §7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import wait_until
from conftest import Project, base_workflow, process_running

from vik_tui.engine.processes.proc import group_alive

VIK = [sys.executable, "-m", "vik_tui"]
STATE_FIELDS = [
    "workflow_path",
    "cwd",
    "pid",
    "port",
    "bind_address",
    "started_at",
    "log_dir",
    "sessions_dir",
    "command",
]


def vik(*args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIK, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def state_file(project: Project) -> Path:
    root = project.root / ".vik" / "workflows" / str(project.workflow_path).replace("/", "-")
    return root / "service" / "state.json"


def session_records(project: Project) -> list[dict[str, Any]]:
    sessions = state_file(project).parent.parent / "sessions"
    return [json.loads(line) for path in sessions.rglob("*.jsonl") for line in path.read_text().splitlines()]


@pytest.fixture
def forever(project: Project) -> Path:
    """A workflow whose supervisor runs until stopped, with one agent that waits to be told to stop."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    return project.write(wf)


def test_status_without_a_supervisor_is_not_installed(project: Project) -> None:
    path = project.write(base_workflow(project))
    out = vik("status", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "status: not installed",  # vik's word, then what it means (issue #17 item 8)
        "meaning: no supervisor of this workflow is running (it stopped cleanly, or none was started);"
        " start one with `vik-tui run -d`",
        f"state_file: {state_file(project)}",
    ]
    stop = vik("stop", str(path))
    assert stop.returncode == 1
    assert stop.stderr.strip() == f"vik-tui stop failed: no daemon state file for {state_file(project)}"
    assert vik("uninstall", str(path)).stdout.strip() == "daemon uninstalled (state file removed if present)"


def test_run_is_the_foreground_headless_run(project: Project) -> None:
    """`vik-tui run WORKFLOW` is vik's `run`: no UI, readable lines, exit 0; state.json gone afterwards."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    path = project.write(base_workflow(project))
    out = vik("run", str(path))
    assert out.returncode == 0, out.stderr
    assert "supervisor started" in out.stdout and "A/plan" in out.stdout
    assert not state_file(project).exists()


def test_detached_run_status_stop(project: Project, forever: Path) -> None:
    started = vik("run", "-d", str(forever))
    assert started.returncode == 0, started.stderr
    assert started.stdout == ""  # like vik, the parent prints nothing once the daemon is up
    state = json.loads(state_file(project).read_text())
    pid = state["pid"]
    try:
        assert list(state) == [*STATE_FIELDS, "pid_start_time"]  # vik's nine, then ours (vik reads past it)
        assert isinstance(state["pid_start_time"], int)
        assert state["command"] == f"vik-tui run -d {forever}" and state["port"] == 0
        assert process_running(pid)
        # the agent starts; its session file names it
        wait_until(lambda: any(r["kind"] == "session_started" for r in session_records(project)), 60, "the agent")
        status = vik("status", str(forever))
        assert status.returncode == 0
        lines = status.stdout.splitlines()
        assert lines[0] == "status: running" and lines[2] == f"pid: {pid}"
        assert [line.split(":", 1)[0] for line in lines] == [
            "status",
            "state_file",
            "pid",
            "bind_address",
            "started_at",
            "log_dir",
            "sessions_dir",
            "workflow_path",
            "command",
            "api_socket",
            "api_token",
        ]  # fmt: skip  (vik's fields, then ours: the HTTP API; no api_url without --port)
        assert "bind_address: 127.0.0.1:0" in lines and lines[4].endswith(" UTC")
        again = vik("run", "-d", str(forever))
        assert again.returncode == 1
        assert again.stderr.strip() == (
            f"vik-tui run -d: daemon already running (pid {pid}, state file {state_file(project)})"
        )
        stopped = vik("stop", str(forever))
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == "daemon stopped"
    finally:
        if process_running(pid):  # never leave the daemon behind, whatever failed above
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
    assert not process_running(pid) and not state_file(project).exists()
    outcomes = [r["outcome"] for r in session_records(project) if "outcome" in r]  # on the last, vik's, record
    assert [(o["state"], o["reason"]) for o in outcomes] == [("cancelled", "supervisor shutting down")]
    output = (state_file(project).parent.parent / "logs" / "daemon.out").read_text()
    assert "supervisor stopped" in output
    assert vik("status", str(forever)).stdout.startswith("status: not installed")


def test_restart_and_uninstall(project: Project, forever: Path) -> None:
    first = vik("restart", str(forever))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "no daemon was running; starting one"
    pids = [json.loads(state_file(project).read_text())["pid"]]
    try:
        second = vik("restart", str(forever))
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "daemon stopped; starting a fresh one"
        pids.append(json.loads(state_file(project).read_text())["pid"])
        assert pids[0] != pids[1] and not process_running(pids[0])
        gone = vik("uninstall", str(forever))
        assert gone.returncode == 0 and gone.stdout.strip() == "daemon uninstalled (state file removed if present)"
        assert not state_file(project).exists() and not process_running(pids[1])
    finally:
        for pid in pids:
            if process_running(pid):
                subprocess.run(["kill", "-KILL", str(pid)], check=False)


def test_stale_state_file(project: Project) -> None:
    """A state file whose pid is dead: `status` says stale, `stop` removes it."""
    path = project.write(base_workflow(project))
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = state_file(project)
    target.parent.mkdir(parents=True)
    target.write_text(
        json.dumps(
            {
                "workflow_path": str(path),
                "cwd": "/",
                "pid": dead.pid,
                "port": 0,
                "bind_address": "127.0.0.1",
                "started_at": "2026-05-16T10:00:00.123456789Z",
                "log_dir": "/l",
                "sessions_dir": "/s",
                "command": "vik run /x",
            }
        )
    )
    out = vik("status", str(path))
    assert out.stdout.splitlines()[0] == "status: stale"
    assert "started_at: 2026-05-16 10:00:00.123456789 UTC" in out.stdout.splitlines()
    assert vik("stop", str(path)).stdout.strip() == "daemon stopped"
    assert not target.exists()


def test_unreadable_state_file_is_an_error(project: Project) -> None:
    path = project.write(base_workflow(project))
    target = state_file(project)
    target.parent.mkdir(parents=True)
    target.write_text('{"pid": 1}')
    out = vik("status", str(path))
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == f"vik-tui status failed: failed to parse daemon state file {target}: missing field `workflow_path`"
    )
    refused = vik("run", "-d", str(path))
    assert refused.returncode == 1 and "read daemon state file" in refused.stderr


def test_detached_run_that_cannot_start_says_why(project: Project, forever: Path) -> None:
    """The lock is held by a foreground run: `run -d` reports the daemon's own error and exits 1."""
    holder = subprocess.Popen([*VIK, "run", "--json", str(forever)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        for line in holder.stdout:
            if json.loads(line)["event"] == "stage_started":
                agent = json.loads(line)["pid"]
                break
        # the foreground run's state file names a live pid: refused before forking, as vik does
        refused = vik("run", "-d", str(forever))
        assert refused.returncode == 1 and "daemon already running" in refused.stderr
        stopped = vik("stop", str(forever))  # `stop` works on a foreground run too
        assert stopped.returncode == 0, stopped.stderr
        assert holder.wait(timeout=60) == 0
        assert not group_alive(agent)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_command_and_restart_keep_the_api_options(project: Project, forever: Path) -> None:
    """state.json's `command` is the command line that started the daemon, `--port` and
    `--bind-address` included (vik's); `restart` without them starts the new daemon on the old
    one's port and address, and `restart --port N` moves it (vik's restart options)."""
    import socket

    with socket.socket() as probe:  # a free port (bound by the daemon, not here)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = vik("run", "-d", "--port", str(port), "--bind-address", "127.0.0.1", str(forever))
    assert started.returncode == 0, started.stderr
    pids = [json.loads(state_file(project).read_text())["pid"]]
    try:
        state = json.loads(state_file(project).read_text())
        assert (state["command"], state["port"]) == (f"vik-tui run -d --port {port} {forever}", port)
        again = vik("restart", str(forever))
        assert again.returncode == 0, again.stderr
        state = json.loads(state_file(project).read_text())
        pids.append(state["pid"])
        assert pids[1] != pids[0] and (state["port"], state["bind_address"]) == (port, "127.0.0.1")
        assert state["command"] == f"vik-tui run -d --port {port} {forever}"
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass  # the new daemon serves there
        moved = vik("restart", "--port", "0", str(forever))
        assert moved.returncode == 0, moved.stderr
        state = json.loads(state_file(project).read_text())
        pids.append(state["pid"])
        assert state["command"] == f"vik-tui run -d --port 0 {forever}" and state["port"] not in (0, port)
    finally:
        vik("stop", str(forever))
        for pid in pids:
            if process_running(pid):
                subprocess.run(["kill", "-KILL", str(pid)], check=False)
