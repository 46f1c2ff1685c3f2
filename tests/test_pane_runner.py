"""Issue #17 item 7: a take-over (or a shell) opened in a tmux pane runs with the supervisor's
environment, not the tmux server's, and a CLI that exits at once keeps its pane open with its
exit status instead of taking its error away. Real tmux, a real pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from chaos_helpers import wait_until

REPO = Path(__file__).resolve().parent.parent

OPEN = """
import sys
from pathlib import Path
from vik_tui.engine.places.terminals import open_in_tmux
from vik_tui.engine.view import Terminal
ok, message = open_in_tmux(Terminal(tuple(sys.argv[2:]), Path(sys.argv[1]), "A-1/plan #1"))
print(ok, message)
"""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_pane_has_our_environment_and_stays_open_after_a_quick_exit(tmp_path: Path) -> None:
    socket = f"vik-pane-{uuid.uuid4().hex[:8]}"
    server_env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "VIK_PANE_SECRET")}

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=20, env=server_env)

    try:
        assert tmux("new-session", "-d", "-s", "app", "-x", "160", "-y", "40", "sleep 600").returncode == 0
        where = tmux("display-message", "-p", "-t", "app", "#{socket_path},#{pid},#{session_id}").stdout.strip()
        seen = tmp_path / "seen.txt"
        client_env = dict(os.environ, TMUX=where, VIK_PANE_SECRET="s3cret", PYTHONPATH=str(REPO))
        opened = subprocess.run(
            [sys.executable, "-c", OPEN, str(tmp_path), "sh", "-c", f'echo "$VIK_PANE_SECRET" > {seen}; exit 3'],
            capture_output=True,
            text=True,
            timeout=30,
            env=client_env,
        )
        assert opened.stdout.startswith("True opened A-1/plan #1 in a tmux pane"), opened.stdout + opened.stderr
        wait_until(lambda: seen.exists() and seen.read_text() == "s3cret\n", 30, "the pane to see our environment")

        def pane_text() -> str:
            panes = tmux("list-panes", "-a", "-F", "#{pane_id}").stdout.split()
            assert len(panes) == 2, panes  # the quick exit did not close it
            return tmux("capture-pane", "-p", "-J", "-t", panes[-1]).stdout

        text = wait_until(lambda: "press Enter to close" in pane_text() and pane_text(), 30, "the exit status")
        assert "[vik-tui] A-1/plan #1: `sh` exited with status 3 after" in text
        left = [p for p in Path(tempfile.gettempdir()).glob("vik-tui-pane-*.json") if "s3cret" in p.read_text()]
        assert left == []  # the spec file with the environment is gone
        panes = tmux("list-panes", "-a", "-F", "#{pane_id}").stdout.split()
        tmux("send-keys", "-t", panes[-1], "Enter")
        wait_until(lambda: len(tmux("list-panes", "-a", "-F", "#{pane_id}").stdout.split()) == 1, 30, "pane closed")
    finally:
        tmux("kill-server")
