"""The HTTP API in the real commands: `run --port`, `run -d --port`, `status`, a port in use, a
remote bind, and a client killed with SIGKILL mid-stream (nothing depends on a client)."""

from __future__ import annotations

import json
import os
import pty
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from chaos_helpers import last_outcome, session_files, wait_until
from conftest import Project, base_workflow, busy_port, process_running

from vik_tui.api.endpoint import ensure_token, short_path

VIK = [sys.executable, "-m", "vik_tui"]


def vik(*args: str, timeout: float = 90, terminal: bool = False) -> subprocess.CompletedProcess[str]:
    """vik-tui as a subprocess; `terminal` gives it a pseudo-terminal for stdin and stdout (the
    UI refuses to start without one), stderr still captured."""
    if not terminal:
        return subprocess.run([*VIK, *args], capture_output=True, text=True, timeout=timeout)
    leader, follower = pty.openpty()
    try:
        return subprocess.run(
            [*VIK, *args], stdin=follower, stdout=follower, stderr=subprocess.PIPE, text=True, timeout=timeout
        )
    finally:
        os.close(follower)
        os.close(leader)


def service_dir(project: Project) -> Path:
    return project.root / ".vik" / "workflows" / str(project.workflow_path).replace("/", "-") / "service"


def curl(*args: str, unix: Path | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """curl as a real client; on the socket through a short /proc/self/fd path inherited at the same fd."""
    if unix is None:
        return subprocess.Popen(["curl", "-sS", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    with short_path(unix) as path:
        fds = (int(path.split("/")[4]),) if path.startswith("/proc/self/fd/") else ()
        return subprocess.Popen(
            ["curl", "-sS", "--unix-socket", path, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=fds,
            **kwargs,
        )


def fetch(*args: str, unix: Path | None = None) -> Any:
    proc = curl(*args, unix=unix)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_a_port_in_use_or_a_remote_address_is_one_line_and_exit_1(project: Project) -> None:
    path = project.write(base_workflow(project))
    with busy_port() as port:
        for command in (["run"], ["run", "-d"], []):
            out = vik(*command, "--port", str(port), str(path), terminal=not command)
            verb = " ".join(["vik-tui", *command]) if command else "vik-tui"
            assert out.returncode == 1, out
            assert out.stderr == f"{verb}: cannot listen on 127.0.0.1:{port}: the port is already in use\n"
    out = vik("run", "--port", "0", "--bind-address", "0.0.0.0", str(path))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "--allow-remote" in out.stderr
    assert not (service_dir(project) / "state.json").exists()  # nothing started


def test_detached_run_serves_the_socket_and_the_port_recorded_in_state_json(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    path = project.write(wf)
    started = vik("run", "-d", "--port", "0", str(path))
    assert started.returncode == 0, started.stderr
    service = service_dir(project)
    state = json.loads((service / "state.json").read_text())
    pid = state["pid"]
    try:
        assert state["port"] > 0 and state["bind_address"] == "127.0.0.1"
        status = vik("status", str(path)).stdout.splitlines()
        token = next(line.split(": ", 1)[1] for line in status if line.startswith("api_token: "))
        url = next(line.split(": ", 1)[1] for line in status if line.startswith("api_url: "))
        assert url == f"http://127.0.0.1:{state['port']}/api/v1"
        assert f"api_socket: {service / 'api.sock'}" in status
        assert stat.S_IMODE(os.stat(service / "api.sock").st_mode) == 0o600
        wait_until(lambda: session_files(path), 60, "the agent")
        body = fetch("-H", f"Authorization: Bearer {token}", f"{url}/state")
        assert body["pid"] == pid and body["counts"]["running"] == 1
        refused = fetch(f"{url}/state")
        assert refused["error"]["code"] == "unauthorized"
        body = fetch("http://x/api/v1/issues/A", unix=service / "api.sock")
        assert body["status"] == "running"
        stopped = fetch("-X", "POST", "--data", '{"confirm": true}', "http://x/api/v1/stop", unix=service / "api.sock")
        assert stopped["ok"] is True
        wait_until(lambda: not process_running(pid), 60, "the daemon to stop")
    finally:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)
    assert not (service / "api.sock").exists() and not (service / "state.json").exists()
    assert last_outcome(session_files(path)[0])["reason"] == "supervisor shutting down"


def test_a_client_killed_mid_stream_changes_nothing(project: Project) -> None:
    """kill -9 of an event-stream client while agents stream: every agent finishes, every outcome
    is written, and the supervisor's own events show nothing went wrong."""
    issues = [{"id": f"K-{i}", "title": f"k{i}", "state": "todo"} for i in range(3)]
    project.set_issues(issues)
    wf = base_workflow(project)
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": 3, "--interval": 0.02}
    path = project.write(wf)
    run = subprocess.Popen([*VIK, "run", "--json", str(path)], stdout=subprocess.PIPE, text=True)
    client: subprocess.Popen[bytes] | None = None
    try:
        assert run.stdout is not None
        events = []
        for line in run.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "stage_started":
                break
        client = curl("-N", "http://x/api/v1/events", unix=service_dir(project) / "api.sock")
        assert client.stdout is not None
        received = client.stdout.read(4096)  # it is streaming
        assert b"event: " in received
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
        events += [json.loads(line) for line in run.stdout]
        assert run.wait(timeout=120) == 0
    finally:
        for proc in (client, run):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    finished = [e for e in events if e["event"] == "stage_finished"]
    assert sorted(e["issue"] for e in finished) == ["K-0", "K-1", "K-2"]
    assert {e["state"] for e in finished} == {"completed"}
    assert [last_outcome(f)["state"] for f in session_files(path)] == ["completed"] * 3
    assert [e for e in events if e["level"] in ("error", "warning")] == []
    assert not (service_dir(project) / "api.sock").exists()


def test_a_new_token_never_reads_as_an_option(tmp_path: Path) -> None:
    """`vik-tui attach URL --token TOKEN` with the token `status` prints: URL-safe base64 began
    with `-` one time in 64, and argparse took it for an option ("expected one argument")."""
    tokens = {ensure_token(tmp_path / f"api-{n}.token") for n in range(300)}
    assert len(tokens) == 300
    for token in tokens:
        assert len(token) == 64 and all(c in "0123456789abcdef" for c in token), token


def test_attach_takes_a_token_that_begins_with_a_dash() -> None:
    """A token made by an older vik-tui (URL-safe base64) may begin with `-`: attach still reads
    it as the token, and says the supervisor cannot be reached, not "expected one argument"."""
    out = subprocess.run(
        [sys.executable, "-m", "vik_tui", "attach", "http://127.0.0.1:9", "--token", "-qUx0ld"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert "cannot attach to http://127.0.0.1:9: cannot connect" in out.stderr
