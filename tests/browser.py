"""A real browser for `vik-tui web`: Debian's chromium driven by Playwright (no browser
download: `executable_path`), and `vik-tui web` as a subprocess. Shared by tests/test_web.py and
benchmarks/web.py.

The page keeps the text of the rendered terminal in `#screen-text` (vik_tui/web/page.py);
`wait_screen` waits for it in the page itself (a MutationObserver), so a wait costs no polling
round trips. The page's Content-Security-Policy forbids eval, so everything run in the page is
a function (`page.evaluate`), never a string predicate (`wait_for_function` evals).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIK = [sys.executable, "-m", "vik_tui"]

# resolves with the screen's text once every needle is on it (and none of `absent`), or null
WAIT_SCREEN_JS = """
([needles, absent, timeoutMs]) => new Promise((resolve) => {
  const el = document.getElementById("screen-text");
  const ok = () => needles.every((n) => el.textContent.includes(n)) && !absent.some((n) => el.textContent.includes(n));
  if (ok()) { resolve(el.textContent); return; }
  const observer = new MutationObserver(() => {
    if (ok()) { observer.disconnect(); clearTimeout(timer); resolve(el.textContent); }
  });
  observer.observe(el, { childList: true, characterData: true, subtree: true });
  const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, timeoutMs);
})
"""


def screen(page: Any) -> str:
    return str(page.evaluate("() => document.getElementById('screen-text').textContent"))


def wait_screen(page: Any, *needles: str, absent: tuple[str, ...] = (), timeout: float = 60.0) -> str:
    """The screen's text once it shows every needle (and none of `absent`); AssertionError with
    the last screen otherwise."""
    text = page.evaluate(WAIT_SCREEN_JS, [list(needles), list(absent), int(timeout * 1000)])
    if text is None:
        raise AssertionError(f"the page never showed {needles} (without {absent}); it shows:\n{screen(page)}")
    return str(text)


@dataclass
class WebServer:
    """`vik-tui web WORKFLOW --port 0` as a subprocess; its output lines are collected."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    url: str = ""

    @classmethod
    def start(cls, workflow: Path, *extra: str, timeout: float = 60.0) -> WebServer:
        proc = subprocess.Popen(
            [*VIK, "web", str(workflow), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = cls(proc)
        threading.Thread(target=server._read, daemon=True).start()
        found = server.wait_line(r" at (http://\S+/) ", timeout)
        server.url = found.group(1)
        return server

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 60.0, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None and not any(re.search(pattern, line) for line in self.lines[after:]):
                time.sleep(0.2)  # the reader may still be draining the pipe
                if not any(re.search(pattern, line) for line in self.lines[after:]):
                    raise AssertionError(f"vik-tui web exited {self.proc.returncode}: {self.lines}")
            time.sleep(0.02)
        raise AssertionError(f"vik-tui web never printed {pattern!r}: {self.lines}")

    def tab_pids(self) -> set[int]:
        """The tab processes now running (children of the server running `vik_tui attach`)."""
        pids = set()
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return set()
        for child in children:
            try:
                if "attach" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                    pids.add(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def logged_in_page(browser: Any, server: WebServer, token: str, size: tuple[int, int] = (1400, 800)) -> Any:
    """A new browser context (its own cookies) with the app open through `?token=`."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(f"{server.url}?token={token}")
    return page
