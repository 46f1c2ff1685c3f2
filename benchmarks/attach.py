"""Benchmark: the attached UI (`vik-tui attach`) against the in-process one, and what attached
clients cost the supervisor.

    python benchmarks/attach.py [--samples 40] [--talkers 5] [--issues 10000] [--agents 10]
                                [--seconds 8] [--rounds 2] [--flood-seconds 60] [--skip ...]

1. agent line -> visible: one agent (`echo_agent.py`) prints a message the moment the benchmark
   writes it to its FIFO; the in-process UI (`vik-tui WORKFLOW` in one tmux server, serving the
   API) and an attached UI (`vik-tui attach WORKFLOW` in another) both show that agent's pane,
   while `--talkers` other agents talk. Both screens are read with capture-pane, alternately,
   every ~2 ms, until each shows the line (`tmux_screen.py`'s method, as `ui_stream.py`).
2. attach -> first full frame: `vik-tui run -d` on a 10,000-issue tracker (`big_tracker.py`),
   then `vik-tui attach` in tmux until the list shows rows and the header `attached to pid`.
3. engine events/s: `--agents` agents flooding for `--seconds` in a daemon, with 0, 1 and 10
   attached clients (`AttachedEngine`s in this process, each republishing to a counting
   listener); rate = session records written / span from the first start to the last end; CPU
   of the supervisor and of the clients' process (this one) per 100,000 records; the share of
   the records the least served client received (a client that falls behind is dropped).
4. supervisor RSS with one client that opens the event stream and never reads, while agents
   flood for `--flood-seconds`: sampled every second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from big_tracker import write_big_tracker  # noqa: E402
from tmux_screen import TmuxApp, listed_ids, pct  # noqa: E402

FAKE = ROOT / "tests" / "fakes" / "fake_codex"
ECHO = ROOT / "benchmarks" / "echo_agent.py"
VIK = [sys.executable, "-m", "vik_tui"]


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def layout_of(workflow: Path) -> Any:
    from vik_tui.config.loader import load_workflow
    from vik_tui.engine.service.paths import Layout

    result = load_workflow(workflow)
    assert result.ok and result.workflow is not None, result.diagnostics
    return Layout.for_workflow(result.workflow, result.path)


def daemon_pid(workflow: Path) -> int:
    return int(json.loads(layout_of(workflow).state_file.read_text())["pid"])


def start_daemon(workflow: Path) -> int:
    out = subprocess.run([*VIK, "run", "-d", str(workflow)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"run -d failed: {out.stderr}")
    return daemon_pid(workflow)


def stop_daemon(workflow: Path) -> None:
    subprocess.run([*VIK, "stop", str(workflow)], capture_output=True, text=True, timeout=120)


def wait(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


# -- 1. agent line -> visible ---------------------------------------------------------------------
def echo_workflow(work: Path, talkers: int) -> tuple[Path, Path]:
    fifo = work / "lines.fifo"
    os.mkfifo(fifo)
    issues = [{"id": "ECHO-1", "title": "the measured agent", "state": "echo"}]
    issues += [{"id": f"TALK-{i}", "title": f"talker {i}", "state": "todo"} for i in range(talkers)]
    (work / "issues.json").write_text(json.dumps(issues))
    workflow = {
        "loop": {"max_issue_concurrency": talkers + 1, "cancel_grace_sec": 2},
        "agents": {
            "echo": {"runtime": "codex", "model": "m", "command": str(ECHO), "args": {"--fifo": str(fifo)}},
            "codex": {
                "runtime": "codex",
                "model": "m",
                "command": str(FAKE),
                "args": {"--mode": "talk", "--sleep": 600, "--interval": 0.1},
            },
        },
        "issues": {"pull": {"command": f"cat {work / 'issues.json'}", "idle_sec": 5}},
        "issue": {
            "stages": {
                "echo": {"when": {"state": "echo"}, "agent": "echo", "prompt": "go"},
                "work": {"when": {"state": "todo"}, "agent": "codex", "prompt": "go"},
            }
        },
    }
    path = work / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return path, fifo


def line_latency(samples: int, talkers: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        workflow, fifo = echo_workflow(work, talkers)
        inproc = TmuxApp(f"{sys.executable} -m vik_tui --no-bell {workflow}", cols=160, rows=45)
        attached = TmuxApp(f"{sys.executable} -m vik_tui attach --no-bell {workflow}", cols=160, rows=45)
        writer = None
        try:
            inproc.start()
            inproc.wait(lambda s: "ECHO-1" in s and f"running {talkers + 1}/" in s, "the agents running", timeout=60)
            wait(lambda: layout_of(workflow).api_socket.exists(), "the in-process UI's socket")
            attached.start()
            attached.wait(lambda s: "attached to pid" in s and "ECHO-1" in s, "the attached UI", timeout=60)
            writer = open(fifo, "w")  # noqa: SIM115 - held open for every sample
            results: dict[str, list[float]] = {"in-process": [], "attached": []}
            for i in range(samples + 3):
                mark = f"MARK-{i:04d}-{os.getpid()}"
                t0 = time.perf_counter()
                writer.write(mark + "\n")
                writer.flush()
                seen: dict[str, float] = {}
                deadline = t0 + 10
                while len(seen) < 2:
                    for name, app in (("in-process", inproc), ("attached", attached)):
                        if name not in seen and mark in app.screen():
                            seen[name] = time.perf_counter() - t0
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{mark} never showed in {set(results) - set(seen)}")
                    time.sleep(0.001)
                if i >= 3:  # the first lines warm both panes up
                    for name, value in seen.items():
                        results[name].append(value)
                time.sleep(0.15)
            writer.write("END\n")
            writer.flush()
        finally:
            if writer is not None:
                writer.close()
            attached.tmux("send-keys", "-t", "vik", "q", check=False)
            time.sleep(0.5)
            subprocess.run(["tmux", "-L", attached.socket, "kill-server"], capture_output=True, timeout=20)
            inproc.kill()
    return results


# -- 2. attach -> first full frame ----------------------------------------------------------------
def first_frame(command: str, ready: Callable[[str], bool]) -> float:
    """Process start -> the screen shows `ready` (tmux capture-pane every 2 ms)."""
    app = TmuxApp(command, cols=160, rows=45)
    try:
        app.start()
        app.wait(ready, "the first full frame", timeout=60, poll=0.002)
        return time.perf_counter() - app.started_at
    finally:
        app.kill()  # q (and y when asked): an in-process UI stops its agents, an attached one detaches


async def mirror_seconds(workflow: Path) -> float:
    """An AttachedEngine's start -> its mirror holds the whole view (connect, /state, /view of
    every issue, decoded): the client's share of the first frame, without process start-up."""
    from vik_tui.api.attached import AttachedEngine
    from vik_tui.api.target import live_supervisor

    target = live_supervisor(layout_of(workflow))
    assert target is not None
    engine = AttachedEngine(target)
    t0 = time.perf_counter()
    task = asyncio.ensure_future(engine.run())
    while not (engine.connected and len(engine.snapshot().issues) > 1000):
        await asyncio.sleep(0.002)
    took = time.perf_counter() - t0
    engine.stop()
    await task
    return took


def attach_first_frame(issues: int, rounds: int) -> dict[str, list[float]]:
    """The same 10,000-issue tracker, same run: the in-process UI's first frame (it pulls the
    tracker itself), then, with a daemon running it, the attached UI's (it fetches the view)."""
    times: dict[str, list[float]] = {"in-process": [], "attached": [], "mirror": []}
    with tempfile.TemporaryDirectory() as tmp:
        workflow = write_big_tracker(Path(tmp) / "big", issues=issues, active=20, seconds=300, interval=0.1)
        for _ in range(rounds):
            command = f"{sys.executable} -m vik_tui --no-bell {workflow}"
            times["in-process"].append(first_frame(command, lambda s: len(listed_ids(s)) >= 10))
        pid = start_daemon(workflow)
        try:
            time.sleep(8.0)  # the first pulls done and 20 agents talking
            for _ in range(rounds):
                command = f"{sys.executable} -m vik_tui attach --no-bell {workflow}"
                ready = lambda s: f"attached to pid {pid}" in s and len(listed_ids(s)) >= 10  # noqa: E731
                times["attached"].append(first_frame(command, ready))
                times["mirror"].append(asyncio.run(mirror_seconds(workflow)))
        finally:
            stop_daemon(workflow)
    return times


# -- 3. events/s with 0, 1, 10 clients -------------------------------------------------------------
def flood_workflow(work: Path, agents: int, seconds: float) -> tuple[Path, Path]:
    tracker = work / "issues.json"
    tracker.write_text("[]")
    workflow = {
        "loop": {"max_issue_concurrency": agents, "cancel_grace_sec": 2},
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
    return path, tracker


def session_rate(workflow: Path, agents: int) -> tuple[int, float]:
    """Records written and the span from the first session start to the last end."""
    sessions = sorted(layout_of(workflow).sessions_dir.rglob("*.jsonl"))
    assert len(sessions) == agents, sessions
    count, starts, ends = 0, [], []
    for path in sessions:
        lines = path.read_bytes().splitlines()
        count += len(lines) - 1  # less the outcome record
        outcome = json.loads(lines[-1])["outcome"]
        starts.append(datetime.fromisoformat(outcome["started_at"]))
        ends.append(datetime.fromisoformat(outcome["ended_at"]))
    return count, (max(ends) - min(starts)).total_seconds()


def tail(path: Path, size: int = 2000) -> bytes:
    """The end of a (big) session file, without reading it all."""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its own, not its children's: the agents are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def with_clients(
    workflow: Path, tracker: Path, clients: int, agents: int, pid: int
) -> tuple[float, float, float, float]:
    """events/s, the supervisor's and the clients' (this process's) CPU seconds per 100,000
    records, with `clients` attached, and the share of the records the least served client got
    (below 1: it was dropped for falling behind, and re-attached)."""
    from vik_tui.api.attached import AttachedEngine
    from vik_tui.api.target import live_supervisor

    target = live_supervisor(layout_of(workflow))
    assert target is not None
    from vik_tui.engine import engine_events as ee

    engines = [AttachedEngine(target) for _ in range(clients)]
    received = [0] * clients  # agent records each client got (a dropped client misses some)

    def counter(index: int) -> Callable[[Any], None]:
        def count(event: Any) -> None:
            if isinstance(event, ee.AgentEvents):
                received[index] += len(event.records)

        return count

    for index, engine in enumerate(engines):
        engine.subscribe(counter(index))
    tasks = [asyncio.ensure_future(engine.run()) for engine in engines]
    while not all(engine.connected for engine in engines):
        await asyncio.sleep(0.05)
    cpu0, mine0 = cpu_seconds(pid), time.process_time()
    tracker.write_text(json.dumps([{"id": f"F-{i}", "title": "flood", "state": "todo"} for i in range(agents)]))
    sessions_dir = layout_of(workflow).sessions_dir

    def done() -> bool:
        files = list(sessions_dir.rglob("*.jsonl")) if sessions_dir.is_dir() else []
        return len(files) == agents and all(b'"outcome"' in tail(f) for f in files)

    while not done():
        await asyncio.sleep(0.2)
    cpu, mine = cpu_seconds(pid) - cpu0, time.process_time() - mine0
    records, span = session_rate(workflow, agents)
    written = records + agents  # with the outcome records, which are streamed too
    deadline = time.monotonic() + 20
    while min(received, default=written) < written and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # the last events reach the clients (a dropped one never gets them all)
    for engine in engines:
        engine.stop()
    await asyncio.gather(*tasks)
    delivered = min(received, default=written) / written
    return records / span, cpu / records * 100_000, mine / records * 100_000, delivered


Rates = dict[int, list[float]]


def events_rates(agents: int, seconds: float, rounds: int) -> tuple[Rates, Rates, Rates, Rates]:
    """Rounds interleave the three client counts, so a busy moment of the machine hits each."""
    rates: Rates = {0: [], 1: [], 10: []}
    cpus: Rates = {0: [], 1: [], 10: []}
    client_cpus: Rates = {0: [], 1: [], 10: []}
    delivered: Rates = {0: [], 1: [], 10: []}
    for _ in range(rounds):
        for clients in rates:
            with tempfile.TemporaryDirectory() as tmp:
                workflow, tracker = flood_workflow(Path(tmp), agents, seconds)
                pid = start_daemon(workflow)
                try:
                    rate, cpu, client_cpu, got = asyncio.run(with_clients(workflow, tracker, clients, agents, pid))
                finally:
                    stop_daemon(workflow)
                rates[clients].append(rate)
                cpus[clients].append(cpu)
                client_cpus[clients].append(client_cpu)
                delivered[clients].append(got)
    return rates, cpus, client_cpus, delivered


# -- 4. RSS with a stalled client --------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stalled_client_rss(agents: int, seconds: float) -> list[tuple[float, float]]:
    from vik_tui.api.endpoint import short_path

    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workflow, tracker = flood_workflow(Path(tmp), agents, seconds)
        pid = start_daemon(workflow)
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            with short_path(layout_of(workflow).api_socket) as path:
                stalled.connect(path)
            stalled.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: vik\r\nAccept: text/event-stream\r\n\r\n")
            time.sleep(0.5)  # never read from here on
            tracker.write_text(json.dumps([{"id": f"F-{i}", "title": "flood", "state": "todo"} for i in range(agents)]))
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds + 2:
                samples.append((time.monotonic() - t0, rss_mib(pid)))
                time.sleep(1.0)
        finally:
            stalled.close()
            stop_daemon(workflow)
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)
    return samples


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "n/a"
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--talkers", type=int, default=5)
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood-seconds", type=float, default=60.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "frame", "rate", "rss"])
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    if "latency" not in args.skip:
        lat = line_latency(args.samples, args.talkers)
        inproc, att = lat["in-process"], lat["attached"]
        ratio = pct(att, 0.95) / pct(inproc, 0.95)
        for name, values in (("in-process", inproc), ("attached", att)):
            label = f"agent line -> {name} pane p50 / p95 (max)"
            value = f"{ms(pct(values, 0.5))} / {ms(pct(values, 0.95))} ({ms(max(values))})"
            target = "p95 <= 100 ms" if name == "attached" else ""
            rows.append((label, value, target))
        rows.append(("attached p95 / in-process p95", f"{ratio:.2f}x", "<= 1.5x"))
    if "frame" not in args.skip:
        frames = attach_first_frame(args.issues, args.rounds)
        label = f"{args.issues:,} issues: start -> first full frame, in-process"
        rows.append((label, spread(frames["in-process"], ms), ""))
        label = f"{args.issues:,} issues: attach -> first full frame"
        rows.append((label, spread(frames["attached"], ms), "<= 1.0 s"))
        label = f"{args.issues:,} issues: client start -> view mirrored"
        rows.append((label, spread(frames["mirror"], ms), "(the client's part of it)"))
    if "rate" not in args.skip:
        rates, cpus, client_cpus, delivered = events_rates(args.agents, args.seconds, args.rounds)
        base, base_cpu = statistics.median(rates[0]), statistics.median(cpus[0])
        for clients, values in rates.items():
            label = f"engine events/s, {clients} attached client{'s' if clients != 1 else ''}"
            ratio = statistics.median(values) / base
            target = f"{ratio:.2f}x" + (" (>= 0.9x)" if clients == 10 else "")
            rows.append((label, spread(values, lambda v: f"{v:,.0f}"), target))
        for clients, values in cpus.items():
            label = f"supervisor CPU s per 100k events, {clients} client{'s' if clients != 1 else ''}"
            ratio = statistics.median(values) / base_cpu
            rows.append((label, spread(values, lambda v: f"{v:.2f}"), f"{ratio:.2f}x"))
        for clients, values in client_cpus.items():
            if clients:  # the clients' process shares the cores: what it took is not the engine's
                label = f"clients' CPU s per 100k events, {clients} client{'s' if clients != 1 else ''}"
                rows.append((label, spread(values, lambda v: f"{v:.2f}"), "(same cores)"))
        for clients, values in delivered.items():
            if clients:
                label = f"records the least served client got, {clients} client{'s' if clients != 1 else ''}"
                rows.append((label, spread(values, lambda v: f"{v:.0%}"), "100% (none dropped)"))
    if "rss" not in args.skip:
        samples = stalled_client_rss(args.agents, args.flood_seconds)
        values = [v for _, v in samples]
        third = max(1, len(values) // 3)
        label = f"supervisor RSS, 1 stalled client, {args.flood_seconds:g} s flood"
        value = f"{values[third]:.0f} / {values[2 * third]:.0f} / {values[-1]:.0f} MiB (max {max(values):.0f})"
        rows.append((label, value, "flat"))
    print(f"\nattach benchmark ({os.cpu_count()} cores; medians with min-max over {args.rounds} rounds)\n")
    print(f"{'measure':<52} | {'value':>36} | target")
    print("-" * 110)
    for label, value, target in rows:
        print(f"{label:<52} | {value:>36} | {target}")


if __name__ == "__main__":
    main()
