"""The API costs nothing until it is used: `vik-tui run` listens on its socket (and `--port`) from
the start, but loads the HTTP server (aiohttp, the wire schemas, the handlers) only when the
first client connects, and that first client is served like any other.

Against real `vik-tui run` processes, with `python -X importtime`, which lists on stderr every
module the process imported, when it imported it; and a knock that hangs up, in-process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from chaos_helpers import session_files, wait_until
from conftest import Project, base_workflow, fresh_python, process_running
from engine_helpers import Harness

from vik_tui.api.ask import ask
from vik_tui.api.endpoint import read_token, short_path
from vik_tui.api.front import companion
from vik_tui.api.routes import url_for

# what a run nobody asks must not load: the API's server and its schemas, and any UI
NOT_AT_START = ("aiohttp", "vik_tui.api.server", "vik_tui.api.wire", "vik_tui.api.bodies", "textual", "rich")


def imported(stderr: str) -> set[str]:
    """The modules `-X importtime` reported (`import time: self | cumulative | name`)."""
    lines = [line for line in stderr.splitlines() if line.startswith("import time:") and "|" in line]
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def loaded(modules: set[str], prefix: str) -> list[str]:
    return sorted(name for name in modules if name == prefix or name.startswith(prefix + "."))


def service_dir(project: Project) -> Path:
    return project.root / ".vik" / "workflows" / str(project.workflow_path).replace("/", "-") / "service"


def test_a_headless_run_nobody_asks_never_loads_the_api_server(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    path = project.write(base_workflow(project))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vik_tui", "run", "--headless", "--port", "0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HTTP API on " in done.stdout and "A/plan COMPLETED" in done.stdout  # it served and worked
    modules = imported(done.stderr)
    assert "vik_tui.engine.supervisor" in modules  # the probe sees what the run imported
    for name in NOT_AT_START:
        assert not loaded(modules, name), f"{name} was imported by a run no client asked"


def test_the_first_client_after_start_is_served_on_the_socket_and_the_port(project: Project, tmp_path: Path) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    path = project.write(wf)
    service = service_dir(project)
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "vik_tui", "run", "--port", "0", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_until(lambda: (service / "api.sock").exists() and session_files(path), 60, "the socket and the agent")
        assert not loaded(imported(err.read_text()), "aiohttp")  # listening, not loaded
        status, body = ask(service / "api.sock", "GET", url_for("state"))  # waits in the backlog meanwhile
        assert status == 200 and body["pid"] == proc.pid and body["counts"]["running"] == 1
        assert loaded(imported(err.read_text()), "vik_tui.api.server")
        # the TCP port, bound at start, is served by the same server, behind the token
        port = json.loads((service / "state.json").read_text())["port"]
        token = read_token(service / "api.token")
        refused = subprocess.run(
            ["curl", "-sS", f"http://127.0.0.1:{port}/api/v1/state"], capture_output=True, text=True, timeout=30
        )
        assert json.loads(refused.stdout)["error"]["code"] == "unauthorized"
        answered = subprocess.run(
            ["curl", "-sS", "-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/v1/state"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(answered.stdout)["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not process_running(proc.pid)
    assert not (service / "api.sock").exists()
    assert not os.path.exists(service / f".api.sock.{proc.pid}")


async def test_a_first_client_that_leaves_before_it_is_accepted_loads_the_server_for_the_next(
    project: Project,
) -> None:
    """A knock that hangs up at once (a port scanner, `attach` killed) starts the server all the
    same; the next client is served, and stopping removes the socket."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    harness = Harness(project.write(wf))
    harness.supervisor.add_companion(companion(harness.supervisor))  # as `cli` registers it
    harness.start()
    sock = harness.supervisor.layout.api_socket
    try:
        await harness.wait_for(lambda: sock.exists() and session_files(project.workflow_path))
        with short_path(sock) as unix:
            _reader, writer = await asyncio.open_unix_connection(unix)
            writer.close()  # gone before anything accepted it
            await writer.wait_closed()
            async with (
                aiohttp.ClientSession("http://vik-tui", connector=aiohttp.UnixConnector(path=unix)) as http,
                http.get(url_for("state")) as response,
            ):
                assert response.status == 200
                assert (await response.json())["counts"]["running"] == 1
    finally:
        await harness.stop()
    assert not sock.exists()
    assert not [e for e in harness.events if getattr(e, "level", None) == "error"]


def test_asking_whether_a_supervisor_runs_loads_no_http_client(project: Project) -> None:
    """The UI asks at every start whether the workflow's supervisor runs (`running_supervisor`)
    and, when none does, runs the engine in-process: aiohttp's client (its connector makes a TLS
    context as it is imported, ~0.1 s before the first frame) is loaded only to connect."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    path = project.write(base_workflow(project))
    code = (
        "import sys\n"
        "from vik_tui.cli.tui import running_supervisor\n"
        f"assert running_supervisor({str(path)!r}) is None\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'aiohttp'))\n"
    )
    assert fresh_python(code).strip() == "[]"
