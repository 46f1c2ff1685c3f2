"""`vik-tui run` as a lean process (`cli/lean.py`): no TLS loaded (`ssl` and `_hashlib` halted),
no pydantic plugin lookup (`importlib.metadata`), no anyio event-loop backend, no MiniJinja for
plain templates, nothing imported only for a mistake or a feature not in use, no interpreter
teardown; and all
it serves still works in that process: the HTTP API, hot reload, the agents, the exit code.

Against a real `vik-tui run` with `python -X importtime`, which lists on stderr every module
the process imported."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from conftest import Project, base_workflow, fresh_python, process_running
from test_lazy_api import imported, loaded, service_dir

from vik_tui.api.ask import ask
from vik_tui.api.routes import url_for

# what headless `run` leaves out; Textual and the API server have their own tests (test_lazy_api).
# (`ssl` and `_hashlib` themselves are listed by -X importtime when their import is halted.)
NEVER = (
    "_ssl",
    "anyio._backends",
    "minijinja",
    "importlib.metadata",  # pydantic's plugin lookup (and the uuid6 package's version)
    "uuid6",
    "difflib",  # a near miss in a workflow's names
    "_strptime",
)
# in the process's memory map: what leaving out TLS (and the bzip2 and xz codecs) saves
NOT_MAPPED = ("libssl", "libcrypto", "libbz2", "liblzma")


class Events:
    """The run's `--json` lines, read in a thread, so a wait has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [*map(self._lines.put, stdout), self._lines.put(None)], daemon=True).start()

    def wait(self, name: str, timeout: float = 60.0) -> dict[str, Any] | None:
        """The next event called `name`, or None if none came within `timeout` (or the run ended)."""
        try:
            while (line := self._lines.get(timeout=timeout)) is not None:
                self.seen.append(json.loads(line))
                if self.seen[-1]["event"] == name:
                    return self.seen[-1]
        except queue.Empty:
            return None
        return None


def test_a_lean_run_serves_reloads_and_works_without_tls(project: Project, tmp_path: Path) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    wf["issue"]["stages"]["plan"]["prompt"] = "Fix it.\n"  # plain: no MiniJinja
    path = project.write(wf)
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "vik_tui", "run", "--json", "--port", "0", str(path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    events = Events(proc)
    try:
        assert events.wait("stage_started") is not None, err.read_text()[-2000:]
        status, body = ask(service_dir(project) / "api.sock", "GET", url_for("state"))  # the API, with ssl halted
        assert status == 200 and body["pid"] == proc.pid and body["counts"]["running"] == 1
        mapped = Path(f"/proc/{proc.pid}/maps").read_text()
        assert not [lib for lib in NOT_MAPPED if lib in mapped], "OpenSSL (or bzip2, xz) is mapped in headless run"
        # hot reload from its thread: a save is seen (saved again until it is: the watch is armed
        # a moment after the start, and a save before that is not news to it)
        reloaded = None
        for attempt in range(60):
            wf["issue"]["stages"]["plan"]["prompt"] = f"Fix it, take {attempt}.\n"
            project.write(wf)
            reloaded = events.wait("config_reloaded", timeout=1.0)
            if reloaded is not None:
                break
        assert reloaded is not None, "no config_reloaded after 60 saves"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert events.wait("supervisor_stopped") is not None  # every line out before the process ended
    assert not any(e["event"] == "log" and "watcher stopped" in e.get("message", "") for e in events.seen)
    modules = imported(err.read_text())
    assert "vik_tui.engine.supervisor" in modules and "aiohttp" in modules  # the probe sees what it loaded
    for name in NEVER:
        assert not loaded(modules, name), f"{name} was imported by headless run"
    assert not process_running(proc.pid)


def test_a_lean_run_ends_with_its_own_exit_code_and_every_line(project: Project) -> None:
    """No teardown, nothing lost: the last line is out, the sessions are whole, the code is the run's."""
    project.set_issues([{"id": f"I{i}", "title": "t", "state": "todo"} for i in range(3)])
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["prompt"] = "Fix it.\n"  # plain: no MiniJinja, no render in a child
    path = project.write(wf)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vik_tui", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum("COMPLETED" in line for line in lines) == 3 and "supervisor stopped" in lines[-1]
    modules = imported(done.stderr)
    assert "vik_tui.engine.supervisor" in modules
    for name in NEVER:
        assert not loaded(modules, name), f"{name} was imported by headless run"
    project.write("loop: [broken\n")
    refused = subprocess.run(
        [sys.executable, "-m", "vik_tui", "run", str(path)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1 and "cannot start" in refused.stderr


def test_pydantic_finds_no_plugins_and_imports_no_metadata_for_it() -> None:
    """`lean.leave_out_pydantic_plugins`: models build and validate, `get_plugins()` is empty, and
    any other name asked of the stand-in is the real loader's (which then takes its place)."""
    code = (
        "import sys\n"
        "from vik_tui.cli import lean\n"
        "lean.leave_out_pydantic_plugins()\n"
        "import pydantic\n"
        "class M(pydantic.BaseModel):\n"
        "    x: int\n"
        "assert M(x=1).x == 1 and pydantic.TypeAdapter(list[int]).validate_python(['2']) == [2]\n"
        "assert 'importlib.metadata' not in sys.modules, 'pydantic looked for plugins'\n"
        "from pydantic.plugin import _loader\n"
        "assert list(_loader.get_plugins()) == []\n"
        "assert _loader.PYDANTIC_ENTRY_POINT_GROUP == 'pydantic'\n"
        "assert sys.modules['pydantic.plugin._loader'] is not _loader and 'importlib.metadata' in sys.modules\n"
    )
    fresh_python(code)
