"""The real app in a real terminal: tmux runs `vik-tui demo`, we type keys and read the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")


class Tmux:
    def __init__(self) -> None:
        self.socket = f"vik-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str, check: bool = True) -> str:
        # without COLUMNS/LINES (pytest-xdist workers export 80x24; the app would draw at that size)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20, env=env)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {args} failed: {out.stderr}")
        return out.stdout

    def screen(self, target: str = "vik") -> str:
        return self.run("capture-pane", "-p", "-t", target, check=False)

    def wait_screen(
        self, predicate: Callable[[str], bool], what: str, timeout: float = 60.0, target: str = "vik"
    ) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(target)
            if predicate(text):
                return text
            time.sleep(0.2)  # polling the screen until the condition holds
        raise AssertionError(f"screen never showed {what}; last screen:\n{text}")

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)  # polling until the condition holds
        raise AssertionError(f"never saw {what}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


def test_demo_in_tmux_progresses_opens_shell_split_and_quits(tmp_path: Path) -> None:
    tmux = Tmux()
    demo_dir = tmp_path / "demo"
    log = tmp_path / "exit_code"
    venv_bin = Path(sys.executable).parent
    command = (
        f"PATH={shlex.quote(str(venv_bin))}:$PATH SHELL=/bin/sh "
        f"{shlex.quote(sys.executable)} -m vik_tui demo --dir {shlex.quote(str(demo_dir))} --speed 4; "
        f"echo $? > {shlex.quote(str(log))}"
    )
    try:
        tmux.run("new-session", "-d", "-s", "vik", "-x", "140", "-y", "40", "sh", "-c", command)
        tmux.wait_screen(lambda s: "DEMO-1" in s and "DEMO-6" in s, "the demo issues")
        # progress: some stage completes (a ✓ glyph or the word done in a state column)
        tmux.wait_screen(lambda s: "✓" in s or "work" in s, "a stage completing", timeout=90)
        # the list is drawn before the first stages are dispatched: their workspaces may follow
        workspace_root = tmux.wait(lambda: next(demo_dir.glob(".vik/workflows/*/issues"), None), "the workspaces")
        tmux.wait(lambda: (workspace_root / "DEMO-1").is_dir(), "DEMO-1's workspace")
        tmux.run("send-keys", "-t", "vik", "s")
        # a new pane's current path reads empty until tmux has looked at its process: wait for it
        panes = tmux.wait(
            lambda: (
                (p := tmux.run("list-panes", "-t", "vik", "-F", "#{pane_id} #{pane_current_path}").splitlines())
                and len(p) == 2
                and any("/issues/" in line for line in p)
                and p
            ),
            "a second pane in an issue's workspace",
        )
        shell_pane = [p for p in panes if "/issues/" in p]
        assert shell_pane[0].split(" ", 1)[1].endswith("/issues/DEMO-1")
        tmux.run("send-keys", "-t", shell_pane[0].split()[0], "exit", "Enter")
        tmux.wait(lambda: len(tmux.run("list-panes", "-t", "vik").splitlines()) == 1, "the shell pane closing")
        tmux.run("send-keys", "-t", "vik", "q")
        exited = lambda: log.exists() and log.read_text().strip() != ""  # noqa: E731
        asks = lambda: "stop them and quit?" in tmux.screen()  # noqa: E731
        if tmux.wait(lambda: "asked" if asks() else exited(), "a quit confirmation or the exit") == "asked":
            tmux.run("send-keys", "-t", "vik", "y")
        tmux.wait(exited, "the app to exit", timeout=60)
        assert log.read_text().strip() == "0"
    finally:
        tmux.kill()
    # nothing of the demo survives the app (other tests may run demo agents meanwhile: look at cwd)
    assert demo_processes(demo_dir) == []


def demo_processes(demo_dir: Path) -> list[str]:
    """Processes working inside `demo_dir`; one that exits while we look is simply not there."""
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        cwd = proc.info["cwd"]
        if cwd and (cwd == str(demo_dir) or cwd.startswith(f"{demo_dir}/")):
            found.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or [])}")
    return found
