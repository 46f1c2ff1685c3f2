"""A desktop notification reaches a real terminal through tmux: the app runs in a tmux pane
(with `allow-passthrough on`), a tmux client is attached from a pseudo-terminal this test owns
(the "outer terminal"), and the bytes tmux writes to that terminal must hold the OSC 9 or OSC
777 sequence, unwrapped from tmux's DCS pass-through. The attention event is intake failing
`notify.intake_failures` pulls in a row. Every wait is on a condition (bytes seen, a tmux
channel, a file), never a sleep."""

from __future__ import annotations

import fcntl
import os
import pty
import shlex
import shutil
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from conftest import Project, base_workflow
from test_tmux_e2e import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")


class OuterTerminal:
    """`tmux attach` on a pseudo-terminal of 120x40; everything tmux draws is kept in `seen`."""

    def __init__(self, tmux: Tmux, session: str) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.client = subprocess.Popen(
            ["tmux", "-L", tmux.socket, "attach-session", "-t", session],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        self.seen = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # EIO: the client closed the terminal
                chunk = b""
            with self._changed:
                self.seen += chunk
                self._changed.notify_all()
            if not chunk:
                return

    def wait_for(self, wanted: bytes, what: str, timeout: float = 90.0) -> None:
        """Until `wanted` has been written to the terminal (woken by each read, not polled)."""
        with self._changed:
            if not self._changed.wait_for(lambda: wanted in self.seen or not self._reader.is_alive(), timeout):
                raise AssertionError(f"the terminal never received {what} within {timeout:g}s")
            if wanted not in self.seen:
                raise AssertionError(f"the tmux client ended before {what}: {bytes(self.seen[-400:])!r}")

    def close(self) -> None:
        if self.client.poll() is None:
            self.client.terminate()
        self.client.wait(timeout=20)
        self._reader.join(20)
        os.close(self.leader)


@pytest.mark.parametrize(
    ("vte", "expected"),
    [
        ("", b"\x1b]9;vik-tui workflow.yml: intake failed 2 times in a row: "),
        ("7602", b"\x1b]777;notify;vik-tui workflow.yml;intake failed 2 times in a row: "),
    ],
    ids=["osc9", "osc777-vte"],
)
def test_intake_failing_reaches_the_outer_terminal_through_tmux(
    project: Project, tmp_path: Path, vte: str, expected: bytes
) -> None:
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = "echo 'tracker unreachable' >&2; exit 3"
    wf["loop"]["max_iterations"] = None
    wf["notify"] = {"intake_failures": 2}
    path = project.write(wf)
    done = tmp_path / "exit_code"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g allow-passthrough on\n")
    tmux = Tmux()
    # the app starts once the outer terminal is attached (a tmux channel), so it sees every byte
    app = (
        f"tmux -L {tmux.socket} wait-for attached; "
        f"env -u VTE_VERSION {f'VTE_VERSION={vte} ' if vte else ''}"
        f"{shlex.quote(sys.executable)} -m vik_tui --no-watch {shlex.quote(str(path))}; echo $? > {done}; "
        "exec sleep 600"
    )
    terminal = None
    try:
        tmux.run("-f", str(conf), "new-session", "-d", "-s", "vik", "-x", "120", "-y", "40", "sh", "-c", app)
        terminal = OuterTerminal(tmux, "vik")
        tmux.wait(lambda: tmux.run("list-clients", "-t", "vik").strip(), "the client attached")
        tmux.run("wait-for", "-S", "attached")
        terminal.wait_for(expected, "the desktop notification")
        sequence = bytes(terminal.seen[terminal.seen.index(expected) :]).split(b"\x07")[0] + b"\x07"
        print(f"\nthe outer terminal received: {sequence!r}")
        assert b"exited with code 3" in sequence or b"tracker unreachable" in sequence
        assert b"\x1bPtmux;" not in terminal.seen  # tmux unwrapped it: the terminal got the sequence itself
        assert terminal.seen.count(expected[:12]) == 1  # once per streak, not on every failed pull
        tmux.run("send-keys", "-t", "vik", "q")
        tmux.wait(lambda: done.exists() or "quit" in tmux.screen().lower(), "the quit prompt or the exit")
        if not done.exists():
            tmux.run("send-keys", "-t", "vik", "y")
        tmux.wait(lambda: done.exists() and done.read_text().strip(), "the app to exit", timeout=60)
        assert done.read_text().strip() == "0"
    finally:
        tmux.kill()
        if terminal is not None:
            terminal.close()
