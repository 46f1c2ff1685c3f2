"""Benchmark: the app with 20 fake agents streaming, in-process and in a real terminal.

    python benchmarks/ui_stream.py [--agents 20] [--seconds 10] [--skip-flood] [--skip-tmux]
        [--rows demo,big,many] [--keys 60] [--many 100] [--many-rate 5] [--py-spy DIR]

In-process (run_test) it measures what the app's state says; in tmux (`tmux_screen.py`:
send-keys, then capture-pane polled until the screen shows the result) it measures what a
person sees, `--keys` j/k presses per row: the demo at human pace (`demo`), a 10,000-issue
tracker (`big_tracker.py`: 20 issues in a stage's state, 20 fake agents talking) for key ->
screen, first frame and RSS (2 s after the agents run, once the tracker was pulled three times,
and after the keys) (`big`), and the same tracker with 100 agents printing 5 lines a second
each (`many`: #20's budget, key -> screen p95 <= 100 ms). Each row also gives the CPU of the
app's loop thread: per key (over what it spends without keys) and its load without / with
keys; `--py-spy DIR` profiles each row's keys (py-spy from the same venv or PATH).

Same run, two phases: the engine alone (headless Supervisor), then the same workload with the
Textual app attached. Prints events/s absorbed in each, the UI loop's lag (a 10 ms probe timer's
overshoot), key-to-screen latency (`j`: until the cursor moved and the pane shows the new issue;
`c`+`y`: until the confirm dialog shows, then until the stage shows cancelled), RSS over time,
and the time from process start to the first frame of `vik-tui demo` in a real terminal (tmux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from big_tracker import write_big_tracker  # noqa: E402
from tmux_screen import TmuxApp, bounce, listed_ids, pane_issue, shows_session  # noqa: E402

FAKE = ROOT / "tests" / "fakes" / "fake_codex"
PAGE = os.sysconf("SC_PAGE_SIZE")
WARM_UP_SEC = 16.0  # three pulls of the big tracker (idle_sec 5) before RSS counts as settled


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


def write_workflow(work: Path, agents: int, seconds: float) -> Path:
    tracker = work / "issues.json"
    tracker.write_text(
        json.dumps([{"id": f"ISSUE-{i:02d}", "title": f"streaming agent {i}", "state": "todo"} for i in range(agents)])
    )
    workflow = {
        "loop": {"max_issue_concurrency": agents, "max_iterations": 1, "cancel_grace_sec": 2},
        "agents": {
            "codex": {
                "runtime": "codex",
                "model": "m",
                "command": str(FAKE),
                "args": {"--mode": "flood_for", "--sleep": seconds},
            }
        },
        "issues": {"pull": {"command": f"cat {tracker}", "idle_sec": 1}},
        "issue": {"stages": {"work": {"when": {"state": "todo"}, "agent": "codex", "prompt": "go"}}},
    }
    path = work / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow))
    return path


def new_supervisor(path: Path):  # type: ignore[no-untyped-def]
    from vik_tui.config.loader import load_workflow
    from vik_tui.engine.supervisor import Supervisor

    result = load_workflow(path)
    assert result.ok, result.diagnostics
    return Supervisor(result.workflow, result.path, lock=False)


def events_rate(supervisor) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Events recorded and the span from the first session start to the last end."""
    from datetime import datetime

    def parse_iso(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    sessions = [s for r in supervisor.runs.values() for s in r.sessions]
    events = sum(s.events for s in sessions)
    start = min(parse_iso(s.started_at) for s in sessions)
    end = max(parse_iso(s.ended_at) for s in sessions)
    return events, (end - start).total_seconds()


def engine_alone(agents: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        supervisor = new_supervisor(write_workflow(Path(tmp), agents, seconds))
        asyncio.run(supervisor.run())
        events, span = events_rate(supervisor)
    return {"events": events, "span": span, "rate": events / span}


async def until(condition, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll every millisecond; fail loudly instead of hanging."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def with_ui(agents: int, seconds: float) -> dict[str, Any]:
    from vik_tui.ui.app import VikApp
    from vik_tui.ui.screens.confirm import ConfirmScreen

    tmp = tempfile.TemporaryDirectory()
    supervisor = new_supervisor(write_workflow(Path(tmp.name), agents, seconds))
    app = VikApp(supervisor, bell=False, load_history=False, tune_gc=True)  # as `run_app` does
    lags: list[float] = []
    rss: list[tuple[float, float]] = []
    j_times: list[float] = []
    pane_times: list[float] = []
    confirm_times: list[float] = []
    cancel_times: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        last_rss = 0.0
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(max(0.0, loop.time() - before - 0.01))
            if loop.time() - last_rss > 0.5:
                last_rss = loop.time()
                rss.append((last_rss - t0, rss_mib()))

    def running() -> int:
        return sum(1 for r in supervisor.runs.values() if r.status == "running")

    async with app.run_test(size=(160, 50)) as pilot:
        probe_task = asyncio.ensure_future(probe())
        while running() < agents:
            await pilot.pause(0.01)
        await asyncio.sleep(1.0)
        main = app.main
        for _ in range(5):  # `c` + `y` on the selected (running) stage
            issue = main.selected
            if not any(r.issue_id == issue and r.active for r in supervisor.runs.values()):
                break  # under heavy load the agents may have finished already
            t0 = time.perf_counter()
            app.simulate_key("c")
            await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
            confirm_times.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            app.simulate_key("y")
            await until(lambda: _shows_cancelled(main, issue), f"{issue} to show cancelled", timeout=30)  # noqa: B023 - awaited inside the same iteration
            cancel_times.append(time.perf_counter() - t1)
            before = main.selected
            app.simulate_key("j")
            await until(lambda: main.selected != before and _pane_shows(main), "the next issue")  # noqa: B023 - awaited inside the same iteration
            await asyncio.sleep(0.2)
        for i in range(16):  # `j` (then `k`) while everything streams
            before = main.selected
            t0 = time.perf_counter()
            app.simulate_key("j" if i < 8 else "k")  # as the terminal driver posts it
            await until(lambda: main.selected != before, "the cursor to move")  # noqa: B023 - awaited inside the same iteration
            j_times.append(time.perf_counter() - t0)
            await until(lambda: _pane_shows(main), "the pane to show the issue")
            pane_times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.2)
        while (supervisor.runs and any(r.active for r in supervisor.runs.values())) or not app.engine_done:
            await pilot.pause(0.05)
        probe_task.cancel()
    events, span = events_rate(supervisor)
    tmp.cleanup()
    return {
        "events": events,
        "span": span,
        "rate": events / span,
        "lags": lags,
        "rss": rss,
        "j": j_times,
        "pane": pane_times,
        "confirm": confirm_times,
        "cancel": cancel_times,
    }


def _pane_shows(main) -> bool:  # type: ignore[no-untyped-def]
    """The stage pane shows a session of the selected issue."""
    from vik_tui.ui.widgets.stage_panes import StagePanes

    panes = main.query_one(StagePanes)
    uuid = panes.active_session_uuid()
    issue = main.view.find_issue(main.selected) if main.view else None
    return bool(uuid and issue and issue.find_session(uuid))


def _shows_cancelled(main, issue_id: str) -> bool:  # type: ignore[no-untyped-def]
    """The issue table row of `issue_id` shows the cancelled glyph."""
    from vik_tui.ui.widgets.issue_table import IssueTable

    table = main.query_one(IssueTable)
    try:
        row = table.get_row(issue_id)
    except Exception:
        return False
    glyph = main.app.glyphs.cancelled
    return any(glyph in str(cell) for cell in row)


def first_frame_seconds(runs: int = 3) -> list[float]:
    """Process start to the first frame of `vik-tui demo` in a real terminal (tmux capture-pane)."""
    if shutil.which("tmux") is None:
        return []
    results = []
    for i in range(runs):
        sock = f"vik-bench-{os.getpid()}-{i}"
        with tempfile.TemporaryDirectory() as tmp:
            cmd = f"{sys.executable} -m vik_tui demo --dir {tmp}/demo"
            t0 = time.perf_counter()
            subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "120", "-y", "35", cmd], check=True)
            try:
                while True:
                    screen = subprocess.run(
                        ["tmux", "-L", sock, "capture-pane", "-p"], capture_output=True, text=True
                    ).stdout
                    if "Issues" in screen and "vik-tui" in screen:
                        results.append(time.perf_counter() - t0)
                        break
                    if time.perf_counter() - t0 > 20:
                        raise RuntimeError(f"no first frame within 20 s:\n{screen}")
                    time.sleep(0.005)
            finally:
                subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    return results


@dataclass
class Walk:
    """One row's key presses and what the app process spent on them."""

    switches: list[Any]
    cpu_per_key: float  # CPU seconds of the app per key, over what it spends streaming alone
    rest_load: float  # the loop thread's CPU seconds per second while the agents stream, no keys
    walk_load: float  # ... and while the keys are pressed


PROFILE: dict[str, str] = {}  # `--py-spy DIR`: {"dir": DIR}; each row's walk is profiled there


def timed_walk(app: TmuxApp, keys: int, pause: float, name: str) -> Walk:
    """`keys` j/k presses; the app's CPU during them less its CPU at rest for as long (the
    agents keep streaming in both windows) is what the keys cost, a figure other processes on
    the machine move far less than the latency. Measured on the app's main thread (its loop),
    so the pull's record check in a worker thread does not count."""
    c0, t0 = app.cpu_seconds(), time.perf_counter()
    time.sleep(keys * (pause + 0.1))  # about as long as the walk takes
    rest_rate = (app.cpu_seconds() - c0) / (time.perf_counter() - t0)
    spy = None
    if PROFILE:
        out = Path(PROFILE["dir"]) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        beside = Path(sys.executable).parent / "py-spy"  # installed in the same venv, or on PATH
        command = [
            str(beside) if beside.exists() else "py-spy",
            "record",
            "--pid",
            str(app.pid()),
            "--rate",
            "250",
            "--format",
            "raw",
            "-o",
            str(out),
        ]
        spy = subprocess.Popen([*command, *PROFILE.get("args", "").split()], stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
    c1, t1 = app.cpu_seconds(), time.perf_counter()
    switches = bounce(app, keys, pause=pause)
    walk_cpu, walk_wall = app.cpu_seconds() - c1, time.perf_counter() - t1
    spent = walk_cpu - rest_rate * walk_wall
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    return Walk(switches, spent / max(1, len(switches)), rest_rate, walk_cpu / walk_wall)


def tmux_demo(keys: int) -> Walk:
    """`vik-tui demo` (3 agents at human pace) at 160x45: j/k -> the pane shows the issue."""
    with tempfile.TemporaryDirectory() as tmp:
        app = TmuxApp(f"{sys.executable} -m vik_tui demo --no-bell --dir {tmp}/demo", cols=160, rows=45)
        try:
            app.start()
            app.wait(lambda s: "DEMO-1" in s and "running 3/3" in s, "three demo agents running", timeout=60)
            time.sleep(3.0)  # a few sessions with output
            return timed_walk(app, keys, pause=0.25, name="demo")
        finally:
            app.kill()


def tmux_big(issues: int, active: int, keys: int, interval: float = 0.1) -> dict[str, Any]:
    """A tracker of `issues` issues, `active` agents talking (3 lines every `interval` s each):
    first frame, j/k, RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        workflow = write_big_tracker(Path(tmp) / "big", issues=issues, active=active, seconds=180, interval=interval)
        app = TmuxApp(f"{sys.executable} -m vik_tui --no-bell {workflow}", cols=160, rows=45)
        try:
            app.start()
            app.wait(lambda s: len(listed_ids(s)) >= 1, "the first frame with the list", timeout=60, poll=0.002)
            first_frame = time.perf_counter() - app.started_at
            app.wait(lambda s: f"running {active}/{active}" in s and shows_session(s), "the agents running", timeout=90)
            time.sleep(2.0)
            rss_early = app.rss_mib()
            # the first pulls raise the allocator's high-water mark (two copies of the issues are
            # alive while a pull is taken in); from the third on RSS stays within a few MiB
            time.sleep(max(0.0, app.started_at + WARM_UP_SEC - time.perf_counter()))
            rss_start = app.rss_mib()
            walked = timed_walk(app, keys, pause=0.25, name=f"big-{active}")
            time.sleep(5.0)
            rss_end = app.rss_mib()
            app.keys("q")
            app.wait(lambda s: "quit?" in s or pane_issue(s) is None, "the quit question")
            app.keys("y")
        finally:
            app.kill()
    return {"walk": walked, "first_frame": first_frame, "rss": (rss_early, rss_start, rss_end)}


def report_switches(label: str, walked: Walk, target: str) -> None:
    times = [s.seconds for s in walked.switches]
    flashes = sum(s.flashes for s in walked.switches)
    value = f"{ms(pct(times, 0.5))} / {ms(pct(times, 0.95))} / {ms(max(times))}"
    cpu = f"{walked.cpu_per_key * 1000:.1f} ms"
    loop = f"{walked.rest_load:.0%} / {walked.walk_load:.0%}"
    print(
        f"{label:<46} | {value:>24} | {cpu:>8} | {loop:>9} | {len(times):>4} | {target}; placeholder flashes: {flashes}"
    )


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=60, help="j/k presses per real-terminal row")
    parser.add_argument("--many", type=int, default=100, help="agents streaming in the 'many' row")
    parser.add_argument("--many-rate", type=float, default=5.0, help="lines/s of each agent in the 'many' row")
    parser.add_argument("--rows", default="demo,big,many", help="real-terminal rows: demo, big, many")
    parser.add_argument("--skip-flood", action="store_true", help="only the real-terminal (tmux) rows")
    parser.add_argument("--skip-tmux", action="store_true", help="only the in-process rows")
    parser.add_argument("--py-spy", metavar="DIR", help="profile each real-terminal row's keys with py-spy into DIR")
    parser.add_argument("--py-spy-args", default="", help="more py-spy record arguments (e.g. --gil)")
    args = parser.parse_args()
    if args.py_spy:
        PROFILE.update({"dir": args.py_spy, "args": args.py_spy_args})
    if not args.skip_tmux and shutil.which("tmux"):
        rows = set(args.rows.split(","))
        print(f"real terminal (tmux 160x45, capture-pane polled every 2-3 ms), {os.cpu_count()} cores")
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
        print(f"{'measure':<46} | {'p50 / p95 / max':>24} | {'CPU/key':>8} | {'loop CPU':>9} | {'keys':>4} | target")
        print("-" * 132)
        if "demo" in rows:
            demo = tmux_demo(args.keys)
            report_switches("demo, 3 agents: j/k -> pane shows the issue", demo, "p95 <= 100 ms")
        if "big" in rows:
            big = tmux_big(args.issues, args.agents, args.keys)
            label = f"{args.issues:,} issues, {args.agents} agents: j/k -> pane"
            report_switches(label, big["walk"], "p95 <= 150 ms")
            label = f"{args.issues:,} issues: process start -> list on screen"
            print(f"{label:<46} | {ms(big['first_frame']):>24} | {'':>8} | {'':>9} | {'':>4} | <= 1.0 s")
            rss = big["rss"]
            label = f"{args.issues:,} issues: RSS early / settled / after keys"
            rss_text = f"{rss[0]:.0f} / {rss[1]:.0f} / {rss[2]:.0f} MiB"
            print(f"{label:<46} | {rss_text:>24} | {'':>8} | {'':>9} | {'':>4} | flat")
        if "many" in rows:
            interval = 3 / args.many_rate  # talk mode prints 3 lines per interval
            many = tmux_big(args.issues, args.many, args.keys, interval=interval)
            label = f"{args.many} agents at {args.many_rate:g} lines/s: j/k -> pane"
            report_switches(label, many["walk"], "p95 <= 100 ms (#20)")
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    if args.skip_flood:
        return
    alone = engine_alone(args.agents, args.seconds)
    ui = asyncio.run(with_ui(args.agents, args.seconds))
    print(f"{args.agents} agents streaming for {args.seconds:g} s (2-core machine)\n")
    print(f"{'measure':<42} | {'value':>20} | target")
    print("-" * 80)
    print(f"{'events/s, engine alone':<42} | {alone['rate']:>20,.0f} |")
    print(f"{'events/s, UI attached':<42} | {ui['rate']:>20,.0f} | >= 0.5x alone ({ui['rate'] / alone['rate']:.2f}x)")
    lags = ui["lags"]
    print(
        f"{'UI loop lag p50 / p95 / max':<42} | {ms(pct(lags, 0.5)) + ' / ' + ms(pct(lags, 0.95)) + ' / ' + ms(max(lags)):>20} | p95 <= 100 ms"
    )
    print(
        f"{'key j/k -> cursor row moved p50 / p95':<42} | {ms(pct(ui['j'], 0.5)) + ' / ' + ms(pct(ui['j'], 0.95)):>20} | p95 <= 150 ms"
    )
    print(
        f"{'key j/k -> pane shows that issue p50 / p95':<42} | {ms(pct(ui['pane'], 0.5)) + ' / ' + ms(pct(ui['pane'], 0.95)):>20} |"
    )
    print(
        f"{'key c -> confirm dialog p50 / p95':<42} | {ms(pct(ui['confirm'], 0.5)) + ' / ' + ms(pct(ui['confirm'], 0.95)):>20} | p95 <= 150 ms"
    )
    print(
        f"{'key y -> stage shows cancelled p50 / p95':<42} | {ms(pct(ui['cancel'], 0.5)) + ' / ' + ms(pct(ui['cancel'], 0.95)):>20} | < 1 s"
    )
    rss = ui["rss"]
    half = len(rss) // 2
    first, second = max(v for _, v in rss[:half]), max(v for _, v in rss[half:])
    print(f"{'peak RSS first half / second half':<42} | {f'{first:.0f} / {second:.0f} MiB':>20} | flat")
    frames = first_frame_seconds()
    if frames:
        print(
            f"{'process start -> first frame (vik-tui demo)':<42} | {ms(statistics.median(frames)) + ' (median of ' + str(len(frames)) + ')':>20} | <= 1.0 s"
        )
    print(
        f"\nevents: engine alone {alone['events']:,} in {alone['span']:.1f} s; UI attached {ui['events']:,} in {ui['span']:.1f} s"
    )


if __name__ == "__main__":
    main()
