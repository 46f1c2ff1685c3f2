"""`vik-tui run --headless` and `vik-tui demo --headless` as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Project, base_workflow
from test_engine_events import WIRE

from vik_tui.engine.processes.proc import group_alive

VIK = [sys.executable, "-m", "vik_tui"]


def read_events(proc: subprocess.Popen, until: str, timeout: float = 30.0) -> list[dict]:
    """Read JSON lines from the process until an event named `until` (or EOF)."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == until or time.monotonic() > deadline:
            break
    return events


def test_headless_json_reports_each_outcome(project: Project) -> None:
    project.set_issues(
        [
            {"id": m, "title": m, "state": m}
            for m in ("success", "turn_failed", "exit_nonzero", "exit_early", "reconnecting", "garbage")
        ]
    )
    wf = base_workflow(project)
    wf["agents"] = {
        m: {"runtime": "codex", "model": "m", "command": wf["agents"]["codex"]["command"], "args": {"--mode": m}}
        for m in ("success", "turn_failed", "exit_nonzero", "exit_early", "reconnecting", "garbage")
    }
    wf["agents"]["claude_bad"] = {
        "runtime": "claude_code",
        "model": "m",
        "command": str(Path(__file__).parent / "fakes" / "fake_claude"),
        "args": {"--mode": "not_logged_in"},
    }
    wf["agents"]["missing"] = {"runtime": "codex", "model": "m", "command": "definitely-not-installed-agent"}
    wf["issue"]["stages"] = {m: {"when": {"state": m}, "agent": m, "prompt": "x"} for m in wf["agents"]}
    project.set_issues([{"id": m, "title": m, "state": m} for m in wf["agents"]])
    proc = subprocess.run(
        [*VIK, "run", "--headless", "--json", "--no-watch", str(project.write(wf))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    for e in events:  # the documented wire shape, key order included
        assert list(e) == ["event", "ts", "level", *WIRE[e["event"]]], e
    assert {e["event"] for e in events} >= {"supervisor_started", "intake", "stage_started", "stage_finished"}
    finished = {e["issue"]: e for e in events if e["event"] == "stage_finished"}
    expect = {
        "success": ("completed", "completed"),
        "reconnecting": ("completed", "completed"),
        "garbage": ("completed", "completed"),
        "turn_failed": ("failed", "model refused: context window exceeded"),
        "exit_nonzero": ("failed", "exited with code 3; stderr: fatal: something broke badly"),
        "exit_early": ("failed", "exited with code 0 before completing; stderr: bye before completing"),
        "claude_bad": ("failed", "Not logged in · Please run /login"),
        "missing": ("failed", "`definitely-not-installed-agent` not found on PATH"),
    }
    assert {k: (v["state"], v["reason"]) for k, v in finished.items()} == expect
    assert finished["success"]["tokens"] == {
        "input": 240,
        "output": 90,
        "cache_read": 24,
        "cache_write": 0,
        "reasoning": 16,
    }
    for e in finished.values():
        last = json.loads(Path(e["session_file"]).read_text().splitlines()[-1])
        assert last["kind"] == ("completed" if e["state"] == "completed" else "error")
        assert last["outcome"]["state"] == e["state"]
    started = [e for e in events if e["event"] == "stage_started"]
    assert all(isinstance(e["pid"], int) and e["session_file"] for e in started)
    assert any(e["event"] == "intake" and e["issues"] == 8 for e in events)


def test_headless_sigterm_stops_sessions_cleanly(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    proc = subprocess.Popen(
        [*VIK, "run", "--headless", "--json", str(project.write(wf))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = read_events(proc, "stage_started")[-1]
    assert started["event"] == "stage_started"
    proc.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=30) == 0
    finished = [e for e in rest if e["event"] == "stage_finished"]
    assert finished[0]["state"] == "cancelled" and finished[0]["reason"] == "supervisor shutting down"
    assert rest[-1]["event"] == "supervisor_stopped"
    assert not group_alive(started["pid"])


def test_second_supervisor_of_same_workflow_exits_1(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    path = project.write(wf)
    first = subprocess.Popen([*VIK, "run", "--headless", "--json", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        read_events(first, "stage_started")
        second = subprocess.run([*VIK, "run", "--headless", str(path)], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"another vik-tui supervises this workflow (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_run_refuses_broken_workflow_with_diagnostics(project: Project) -> None:
    project.write("agents: {}\nissues: {pull: {command: ''}}\nissue: {stages: {}}\n")
    proc = subprocess.run(
        [*VIK, "run", "--headless", str(project.workflow_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "error [empty_map] agents" in proc.stderr
    assert "cannot start" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_headless_finishes_every_issue(tmp_path: Path) -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [*VIK, "demo", "--headless", "--dir", str(tmp_path / "demo"), "--speed", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    finished = [e for e in events if e["event"] == "stage_finished"]
    assert {e["stage"] for e in finished if e["state"] == "completed"} == {"plan", "implement", "review"}
    assert any(e["event"] == "retry_scheduled" for e in events)  # the flaky issue fails once
    tracker = json.loads((tmp_path / "demo" / "tracker.json").read_text())
    assert {i["state"] for i in tracker} == {"done"}
    assert not [e for e in finished if e["state"] == "cancelled"]


def test_demo_bad_arguments_get_a_message_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cases = [
        (["--dir", str(blocker / "demo")], 1, "cannot write the demo project"),
        (["--speed", "0", "--dir", str(tmp_path / "d")], 2, "--speed must be greater than 0"),
    ]
    for extra, code, message in cases:
        proc = subprocess.run([*VIK, "demo", "--headless", *extra], capture_output=True, text=True, timeout=60)
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
