"""Measure the app in a real terminal: a private tmux server runs it, keys go in with
`send-keys`, and the screen is read back with `capture-pane`, polled until it shows the result.

Used by `ui_stream.py` (the table) and `tests/test_tmux_latency.py` (the asserts). What counts
as "the pane shows the issue": the session pane's title names the newly selected issue and,
for an issue with sessions, its info line names a session (`work #1 · running ...`). A screen
in between that says "No session yet" for such an issue is counted as a flash.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

NO_SESSION = "No session yet"
_TITLE = re.compile(r"[╭┌]─ (\S+) ")
_ROW = re.compile(r"^[│|] ([A-Z][A-Z0-9]*-\d+) ")
_INFO = re.compile(r"^[│|] \S+ #\d+ · ")
_LINE = re.compile(r"^[│|] \d\d:\d\d:\d\d  \S")


@dataclass
class Switch:
    """One key press that moves the selection: how long until the screen showed the result."""

    key: str
    target: str
    seconds: float
    flashes: int  # screens that showed the placeholder for an issue that has sessions


@dataclass
class TmuxApp:
    command: str
    cols: int = 160
    rows: int = 45
    env: dict[str, str] = field(default_factory=dict)
    socket: str = field(default_factory=lambda: f"vik-measure-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    started_at: float = 0.0

    def tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        if check and out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def start(self) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        line = f"exec env {exports} {self.command}" if exports else f"exec {self.command}"
        self.started_at = time.perf_counter()
        # the server is started with `env` too, so panes it splits later (take over) inherit it
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "new-session",
                "-d",
                "-s",
                "vik",
                "-x",
                str(self.cols),
                "-y",
                str(self.rows),
                line,
            ],
            check=True,
            timeout=20,
            env={**terminal_env(), **self.env},
        )

    def kill(self) -> None:
        """Quit the app as a person would (so it stops its agents), then end the tmux server.

        Killing the server first would only hang up on the app, and its agents could outlive it.
        """
        try:
            pid: int | None = self.pid()
        except (RuntimeError, subprocess.SubprocessError, ValueError, IndexError):
            pid = None
        if pid is not None and _alive(pid):
            try:
                self.keys("q")
                deadline = time.monotonic() + 30
                asked = False
                while _alive(pid) and time.monotonic() < deadline:
                    if not asked and "quit?" in self.screen():
                        self.keys("y")
                        asked = True
                    time.sleep(0.1)
            except (RuntimeError, subprocess.SubprocessError):
                pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "vik", check=False)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "vik", *keys)

    def pid(self) -> int:
        return int(self.tmux("list-panes", "-t", "vik", "-F", "#{pane_pid}").split()[0])

    def cpu_seconds(self) -> float:
        """The CPU time so far (user + system) of the app's main thread, the one its event loop
        runs on (not its worker threads, nor its agents)."""
        pid = self.pid()
        stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid()}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def wait(self, predicate: Callable[[str], bool], what: str, timeout: float = 30.0, poll: float = 0.003) -> str:
        deadline = time.perf_counter() + timeout
        text = ""
        while time.perf_counter() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(poll)
        raise RuntimeError(f"the screen never showed {what} within {timeout:g}s; last screen:\n{text}")


def pane_issue(screen: str) -> str | None:
    """The issue the session pane's title names (the first box title that is not the list's)."""
    for line in screen.splitlines()[:40]:
        for match in _TITLE.finditer(line):
            if match.group(1) not in ("Issues", "Log"):
                return match.group(1)
    return None


def listed_ids(screen: str) -> list[str]:
    """Issue ids in the list, top to bottom (the list is the left box in the wide layout)."""
    return [m.group(1) for line in screen.splitlines() if (m := _ROW.match(line))]


def shows_session(screen: str) -> bool:
    """The pane's info line names a session (`work #1 · running · ...`) and the pane shows
    that session's lines (`12:01:02  ...`: two spaces after the time, unlike the engine log)."""
    info = text = False
    for line in screen.splitlines():
        right = "│" + line.split("││", 1)[1] if "││" in line else line
        info = info or bool(_INFO.match(right))
        text = text or bool(_LINE.match(right))
    return info and text


def switch(app: TmuxApp, key: str, target: str, has_sessions: bool, timeout: float = 10.0) -> Switch:
    """Press `key` and poll until the pane shows `target` (and a session of it, when it has one)."""
    flashes = 0
    t0 = time.perf_counter()
    app.keys(key)
    deadline = t0 + timeout
    while True:
        text = app.screen()
        on_target = pane_issue(text) == target
        if on_target and has_sessions and NO_SESSION in text:
            flashes += 1
        if on_target and (shows_session(text) or not has_sessions):
            return Switch(key, target, time.perf_counter() - t0, flashes)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{key}: the pane never showed {target}; last screen:\n{text}")
        time.sleep(0.002)


SESSION_GLYPHS = set("✓✗⊘↻◔⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def row_has_sessions(screen: str, issue_id: str) -> bool:
    """The list row of `issue_id` shows a stage glyph that only a stage with a session has."""
    for line in screen.splitlines():
        if (m := _ROW.match(line)) and m.group(1) == issue_id:
            left = line.split("││", 1)[0]
            return any(ch in SESSION_GLYPHS for ch in left)
    return False


def walk(
    app: TmuxApp, steps: int, has_sessions: Callable[[str, str], bool] = row_has_sessions, pause: float = 0.25
) -> list[Switch]:
    """j down the list `steps` times, then k back up: one Switch per key. `has_sessions(screen,
    id)` says whether the target has sessions (then the placeholder would be a lie)."""
    results: list[Switch] = []
    for key in ["j"] * steps + ["k"] * steps:
        text = app.screen()
        ids, current = listed_ids(text), pane_issue(text)
        if current not in ids:
            raise RuntimeError(f"the selected issue {current} is not in the list:\n{text}")
        index = ids.index(current) + (1 if key == "j" else -1)
        if not 0 <= index < len(ids):
            continue
        target = ids[index]
        results.append(switch(app, key, target, has_sessions(text, target)))
        time.sleep(pause)
    return results


def bounce(
    app: TmuxApp, keys: int, has_sessions: Callable[[str, str], bool] = row_has_sessions, pause: float = 0.25
) -> list[Switch]:
    """`keys` key presses: j down the rows on screen, k back up at the last one shown, j again
    at the top, so any list (3 rows or 100, scrolled or not) gives as many samples as asked."""
    results: list[Switch] = []
    key = "j"
    while len(results) < keys:
        text = app.screen()
        ids, current = listed_ids(text), pane_issue(text)
        if current not in ids:
            raise RuntimeError(f"the selected issue {current} is not in the list:\n{text}")
        if len(ids) < 2:
            raise RuntimeError(f"fewer than two issues listed:\n{text}")
        index = ids.index(current)
        if key == "j" and index + 1 >= len(ids):
            key = "k"
        elif key == "k" and index == 0:
            key = "j"
        target = ids[index + (1 if key == "j" else -1)]
        results.append(switch(app, key, target, has_sessions(text, target)))
        time.sleep(pause)
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def terminal_env() -> dict[str, str]:
    """This process's environment for a tmux server, less `COLUMNS`/`LINES`: pytest-xdist workers
    export 80×24 there, and an app that inherits them draws at 80×24 in any window; and less
    `PYTHONDONTWRITEBYTECODE`: as installed (pip compiles the bytecode), the app imports from the
    bytecode cache, where with it set every start compiled the UI's modules again (~30 ms of a
    first frame here)."""
    dropped = ("COLUMNS", "LINES", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if k not in dropped}
