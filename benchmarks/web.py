"""Benchmark: the UI in a browser (`vik-tui web`, a real Chromium) beside the attached UI in a
real terminal (`vik-tui attach` in tmux), both attached to one daemon.

    python benchmarks/web.py [--issues 1000] [--active 10] [--steps 20] [--rounds 3]

One daemon (`vik-tui run -d`) on a tracker of `--issues` issues (`big_tracker.py`), `--active`
of them with a fake agent talking (a tool call and a message every 0.1 s), spread through the
list so j/k crosses them.

1. key -> screen: j down the list `--steps` times, then k back up; each press is timed until
   the screen shows the newly selected issue in the pane (its title, and for an issue with a
   session the session's info line and lines: `tmux_screen.py`'s test for both faces).
   - terminal: tmux send-keys, then capture-pane every 2 ms (`tmux_screen.walk`).
   - browser: Playwright presses the key (CDP, as a person's key reaches the page); the page
     times from the keydown event (`event.timeStamp`, a capture listener on window, before
     xterm.js sees it) to the moment `#screen-text`, the text of the frame xterm.js has just
     painted (vik_tui/web/page.py), shows the issue (a MutationObserver, no polling).
2. first frame: `--rounds` times, the terminal's process start -> list on screen (capture-pane),
   and the browser's page load -> list on screen: `page.goto(URL?token=…)` (login redirect,
   the page, textual.js, the websocket, the tab's `vik-tui attach` process starting) until
   `#screen-text` shows 10 listed issues (the active ones) and `attached to pid`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from big_tracker import write_big_tracker  # noqa: E402
from browser import WebServer, launch, screen  # noqa: E402
from tmux_screen import TmuxApp, listed_ids, pane_issue, pct, row_has_sessions, walk  # noqa: E402

VIK = [sys.executable, "-m", "vik_tui"]

# the pane's title names `target` and, when it has sessions, the pane shows one (tmux_screen.py)
ARM_JS = """
([target, hasSessions, timeoutMs]) => {
  const el = document.getElementById("screen-text");
  const title = /[╭┌]─ (\\S+) /g;
  const info = /^[│|] \\S+ #\\d+ · /;
  const line = /^[│|] \\d\\d:\\d\\d:\\d\\d  \\S/;
  const shows = (text) => {
    let pane = null;
    for (const row of text.split("\\n").slice(0, 40)) {
      for (const m of row.matchAll(title)) {
        if (m[1] !== "Issues" && m[1] !== "Log") { pane = m[1]; break; }
      }
      if (pane !== null) break;
    }
    if (pane !== target) return false;
    if (!hasSessions) return true;
    let hasInfo = false, hasLine = false;
    for (const row of text.split("\\n")) {
      const right = row.includes("││") ? "│" + row.split("││")[1] : row;
      hasInfo = hasInfo || info.test(right);
      hasLine = hasLine || line.test(right);
    }
    return hasInfo && hasLine;
  };
  window.vikMeasure = new Promise((resolve) => {
    let start = null;
    window.addEventListener("keydown", (event) => { start = event.timeStamp; }, { capture: true, once: true });
    const observer = new MutationObserver(() => {
      if (start !== null && shows(el.textContent)) {
        observer.disconnect(); clearTimeout(timer); resolve(performance.now() - start);
      }
    });
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, timeoutMs);
  });
  return true;
}
"""

FIRST_FRAME_JS = """
([pid, rows, timeoutMs]) => new Promise((resolve) => {
  const el = document.getElementById("screen-text");
  const row = /^[│|] [A-Z][A-Z0-9]*-\\d+ /;
  const ok = () => el.textContent.includes(`attached to pid ${pid}`)
    && el.textContent.split("\\n").filter((l) => row.test(l)).length >= rows;
  if (ok()) { resolve(true); return; }
  const observer = new MutationObserver(() => { if (ok()) { observer.disconnect(); resolve(true); } });
  observer.observe(el, { childList: true, characterData: true, subtree: true });
  setTimeout(() => { observer.disconnect(); resolve(false); }, timeoutMs);
})
"""


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def layout_of(workflow: Path) -> Any:
    from vik_tui.config.loader import load_workflow
    from vik_tui.engine.service.paths import Layout

    result = load_workflow(workflow)
    assert result.ok and result.workflow is not None, result.diagnostics
    return Layout.for_workflow(result.workflow, result.path)


def daemon_pid(workflow: Path) -> int:
    import json

    return int(json.loads(layout_of(workflow).state_file.read_text())["pid"])


def browser_walk(page: Any, steps: int, pause: float = 0.25) -> list[float]:
    """j down `steps` times, then k back up: seconds from keydown to the painted frame."""
    out: list[float] = []
    for key in ["j"] * steps + ["k"] * steps:
        text = screen(page)
        ids, current = listed_ids(text), pane_issue(text)
        if current not in ids:
            raise RuntimeError(f"the selected issue {current} is not in the list:\n{text}")
        index = ids.index(current) + (1 if key == "j" else -1)
        if not 0 <= index < len(ids):
            continue
        target = ids[index]
        page.evaluate(ARM_JS, [target, row_has_sessions(text, target), 10_000])
        page.keyboard.press(key)
        took = page.evaluate("() => window.vikMeasure")
        if took is None:
            raise RuntimeError(f"{key}: the page never showed {target}:\n{screen(page)}")
        out.append(took / 1000)
        time.sleep(pause)
    return out


def terminal_first_frame(workflow: Path, pid: int, rows: int) -> float:
    app = TmuxApp(f"{sys.executable} -m vik_tui attach --no-bell {workflow}", cols=160, rows=45)
    try:
        app.start()
        app.wait(lambda s: f"attached to pid {pid}" in s and len(listed_ids(s)) >= rows, "the list", 60, poll=0.002)
        return time.perf_counter() - app.started_at
    finally:
        app.kill()


def browser_first_frame(browser: Any, web: WebServer, token: str, pid: int, rows: int) -> tuple[float, float]:
    """(page load -> list on screen, page load -> load event) in seconds."""
    context = browser.new_context(viewport={"width": 1450, "height": 975})
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(f"{web.url}?token={token}")
        loaded = time.perf_counter() - t0
        if not page.evaluate(FIRST_FRAME_JS, [pid, rows, 60_000]):
            raise RuntimeError(f"the page never showed the list:\n{screen(page)}")
        return time.perf_counter() - t0, loaded
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--active", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    rows = min(10, args.active)  # the list shows the issues in a stage's state (the rest is the backlog)
    with tempfile.TemporaryDirectory() as tmp:
        workflow = write_big_tracker(Path(tmp) / "big", issues=args.issues, active=args.active, seconds=900)
        started = subprocess.run([*VIK, "run", "-d", str(workflow)], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise SystemExit(f"run -d failed: {started.stderr}")
        pid = daemon_pid(workflow)
        web = None
        try:
            time.sleep(8.0)  # the first pulls done and the agents talking
            token = layout_of(workflow).api_token_file.read_text().strip()
            web = WebServer.start(workflow, "--no-bell")

            term = TmuxApp(f"{sys.executable} -m vik_tui attach --no-bell {workflow}", cols=160, rows=45)
            term.start()
            try:
                term.wait(lambda s: len(listed_ids(s)) >= rows, "the list", 60)
                time.sleep(1.0)
                terminal_keys = [s.seconds for s in walk(term, args.steps)]
            finally:
                term.kill()

            with sync_playwright() as playwright:
                browser = launch(playwright)
                try:
                    context = browser.new_context(viewport={"width": 1450, "height": 975})
                    page = context.new_page()
                    page.goto(f"{web.url}?token={token}")
                    if not page.evaluate(FIRST_FRAME_JS, [pid, rows, 60_000]):
                        raise RuntimeError(f"the page never showed the list:\n{screen(page)}")
                    time.sleep(1.0)
                    lines = screen(page).split("\n")
                    size = f"{max(len(line) for line in lines)}x{len(lines)}"
                    browser_keys = browser_walk(page, args.steps)
                    context.close()

                    terminal_frames, browser_frames, loads = [], [], []
                    for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
                        terminal_frames.append(terminal_first_frame(workflow, pid, rows))
                        frame, load = browser_first_frame(browser, web, token, pid, rows)
                        browser_frames.append(frame)
                        loads.append(load)
                finally:
                    browser.close()
        finally:
            if web is not None:
                web.stop()
            subprocess.run([*VIK, "stop", str(workflow)], capture_output=True, text=True, timeout=120)

    rows = [
        (
            "j/k -> pane shows the issue, terminal (tmux 160x45)",
            f"{ms(pct(terminal_keys, 0.5))} / {ms(pct(terminal_keys, 0.95))}",
        ),
        (
            f"j/k -> pane shows the issue, browser ({size})",
            f"{ms(pct(browser_keys, 0.5))} / {ms(pct(browser_keys, 0.95))}",
        ),
        (
            "first frame, terminal: process start -> list",
            f"{ms(statistics.median(terminal_frames))} (median of {args.rounds})",
        ),
        (
            "first frame, browser: page load -> list",
            f"{ms(statistics.median(browser_frames))} (median of {args.rounds})",
        ),
        ("  of which page load -> load event", f"{ms(statistics.median(loads))}"),
    ]
    print(
        f"\nattached to one daemon ({args.issues:,} issues, {args.active} agents talking), "
        f"{len(terminal_keys)} / {len(browser_keys)} key presses\n"
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}} | p50 / p95 or value")
    print("-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}} | {value}")


if __name__ == "__main__":
    main()
