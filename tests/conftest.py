"""Shared fixtures: real workflow files in temp dirs, a file tracker, fake agents on disk, real
sshd hosts on 127.0.0.1 (`ssh_lab`).

Also the run-wide rules: no test may leave a process behind (`leak_guard`), and Hypothesis
keeps no example database in the checkout and has no per-example deadline (a loaded CI
machine is slow, not wrong).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from sshd_server import SshdMissing, SshLab
from textual.pilot import Pilot

pytest_plugins = ("leak_guard",)

settings.register_profile(
    "vik-tui", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("vik-tui")
# Hypothesis also caches constants it finds in our sources, by default in ./.hypothesis: keep the
# checkout clean. One fixed directory, shared by the xdist workers as ./.hypothesis would be (a
# per-run one cannot be removed at the end: Hypothesis may still write to it after pytest is done).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "vik-tui-hypothesis")


FAKES = Path(__file__).parent / "fakes"
FAKE_CODEX = FAKES / "fake_codex"
FAKE_CLAUDE = FAKES / "fake_claude"


class Project:
    """A workflow directory with a JSON-file tracker the pull command reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracker = root / "issues.json"
        self.workflow_path = root / "workflow.yml"

    def set_issues(self, issues: list[dict[str, Any]] | str) -> None:
        text = issues if isinstance(issues, str) else json.dumps(issues)
        tmp = self.tracker.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.tracker)

    def write(self, data: dict[str, Any] | str) -> Path:
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        self.workflow_path.write_text(text)
        return self.workflow_path

    @property
    def pull_command(self) -> str:
        return f"cat {shlex.quote(str(self.tracker))}"


def base_workflow(project: Project, **overrides: Any) -> dict[str, Any]:
    """A small valid workflow: one `codex` agent backed by the fake, one stage on `todo`."""
    data: dict[str, Any] = {
        "loop": {
            "max_issue_concurrency": 4,
            "max_iterations": 1,
            "stage_timeout_sec": 60,
            "stall_timeout_sec": 60,
            "hook_timeout_sec": 10,
            "cancel_grace_sec": 1,
            "retry": {"max_attempts": 1, "backoff_sec": 1, "max_backoff_sec": 1},
        },
        "agents": {"codex": {"runtime": "codex", "model": "gpt-5.5", "command": str(FAKE_CODEX), "args": {}}},
        "issues": {"pull": {"command": project.pull_command, "idle_sec": 1}},
        "issue": {
            "stages": {
                "plan": {
                    "when": {"state": "todo"},
                    "agent": "codex",
                    "prompt": "Work on {{ issue.id }}: {{ issue.title }}",
                }
            }
        },
    }
    for key, value in overrides.items():
        data[key] = value
    return data


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    p = Project(root)
    p.set_issues([])
    return p


@pytest.fixture
def ssh_lab(tmp_path: Path) -> Iterator[SshLab]:
    """An SshLab whose sessions carry the leak guard's marker, so a remote process a test leaves
    behind fails the run like a local one; every host is stopped at teardown, pass or fail."""
    import leak_guard  # here, not at the top: pytest_plugins must import it first to rewrite its asserts

    try:
        lab = SshLab(tmp_path / "ssh", setenv=leak_guard.marker_env())
    except SshdMissing as exc:  # never a skip: a suite that silently drops its SSH tests proves nothing
        raise pytest.fail.Exception(f"ssh_lab needs OpenSSH: {exc}", pytrace=False) from None
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def python_exe() -> str:
    return sys.executable


WaitFn = Callable[..., Any]


def fresh_python(code: str) -> str:
    """Run `code` in a new interpreter (what a module imports shows only there) and return what
    it printed; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def process_running(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (a killed orphan may wait a while to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


async def wait_on_screen(pilot: Pilot[Any], predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Let the app run until `predicate()` is truthy (its value is returned); the timeout is only a
    ceiling for a loaded machine, never a pace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.02)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@contextmanager
def busy_port() -> Iterator[int]:
    """A loopback TCP port that something already listens on, for the "port in use" cases."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
