"""Benchmark: N fake agents flooding Codex-shaped JSONL through the real session pipeline.

    python benchmarks/engine_stream.py            # the table for N in 1, 8, 32
    python benchmarks/engine_stream.py --quick    # smaller M, for a smoke run

Each measurement runs in a fresh subprocess so peak RSS and CPU belong to that run alone.
`engine` = the real Supervisor (intake, dispatch, spawn, parse, map, JSONL append, snapshot),
headless with its printer writing to /dev/null. `baseline` = read the same streams from pipes
and write the raw lines to files, nothing else. CPU is the supervisor process's own (children
excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakes" / "fake_codex"


def _usage() -> tuple[float, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss  # seconds, KiB


async def _baseline(n: int, m: int, out_dir: Path) -> int:
    async def one(i: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            str(FAKE),
            "exec",
            "--mode",
            "flood",
            "--lines",
            str(m),
            "--json",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdin and proc.stdout
        proc.stdin.close()
        lines = 0
        with open(out_dir / f"{i}.jsonl", "wb") as handle:
            while chunk := await proc.stdout.read(256 * 1024):
                lines += chunk.count(b"\n")
                handle.write(chunk)
        await proc.wait()
        return lines

    return sum(await asyncio.gather(*(one(i) for i in range(n))))


def _engine(n: int, m: int, work: Path) -> int:
    import yaml

    from vik_tui.config.loader import load_workflow
    from vik_tui.engine.headless import Printer
    from vik_tui.engine.supervisor import Supervisor

    tracker = work / "issues.json"
    tracker.write_text(json.dumps([{"id": f"I{i}", "title": "t", "state": "todo"} for i in range(n)]))
    workflow = {
        "loop": {"max_issue_concurrency": n, "max_iterations": 1},
        "agents": {
            "codex": {"runtime": "codex", "model": "m", "command": str(FAKE), "args": {"--mode": "flood", "--lines": m}}
        },
        "issues": {"pull": {"command": f"cat {tracker}", "idle_sec": 1}},
        "issue": {"stages": {"work": {"when": {"state": "todo"}, "agent": "codex", "prompt": "go"}}},
    }
    path = work / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow))
    result = load_workflow(path)
    assert result.ok, result.diagnostics
    supervisor = Supervisor(result.workflow, result.path)
    sink = open(os.devnull, "w")  # noqa: SIM115 - kept open for the whole run
    supervisor.subscribe(Printer(sink, as_json=True))
    snapshots = 0

    def on_event(event) -> None:  # type: ignore[no-untyped-def]  # a UI-like consumer: reads the snapshot on state changes
        nonlocal snapshots
        if event.name in ("stage_started", "stage_finished"):
            supervisor.snapshot()
            snapshots += 1

    supervisor.subscribe(on_event)
    asyncio.run(supervisor.run())
    return sum(s.events for r in supervisor.runs.values() for s in r.sessions)


def worker(mode: str, n: int, m: int) -> dict:
    import yaml  # noqa: F401  (imports are not part of the measured run)

    import vik_tui.engine.supervisor  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cpu0, _ = _usage()
        start = time.perf_counter()
        events = asyncio.run(_baseline(n, m, work)) if mode == "baseline" else _engine(n, m, work)
        wall = time.perf_counter() - start
        cpu1, rss = _usage()
    return {"mode": mode, "n": n, "m": m, "events": events, "wall": wall, "cpu": cpu1 - cpu0, "rss_kib": rss}


def measure(mode: str, n: int, m: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(n), str(m)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "N", "M"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-m", type=int, default=None, help="lines per agent")
    args = parser.parse_args()
    if args.worker:
        mode, n, m = args.worker
        print(json.dumps(worker(mode, int(n), int(m))))
        return
    m = args.m or (2000 if args.quick else 20000)
    rows = []
    print(f"M = {m} lines per agent; 2-core machine; each cell is one fresh process\n")
    header = f"{'N':>3} | {'engine ev/s':>11} | {'baseline ev/s':>13} | {'ratio':>5} | {'CPU s/100k ev':>13} | {'base CPU s/100k':>15} | {'peak RSS MiB':>12} | {'base RSS MiB':>12}"
    print(header)
    print("-" * len(header))
    for n in (1, 8, 32):
        eng = measure("engine", n, m)
        base = measure("baseline", n, m)
        e_rate = eng["events"] / eng["wall"]
        b_rate = base["events"] / base["wall"]
        rows.append((n, e_rate, b_rate))
        print(
            f"{n:>3} | {e_rate:>11,.0f} | {b_rate:>13,.0f} | {e_rate / b_rate:>5.2f} | "
            f"{eng['cpu'] / eng['events'] * 1e5:>13.2f} | {base['cpu'] / base['events'] * 1e5:>15.2f} | "
            f"{eng['rss_kib'] / 1024:>12.1f} | {base['rss_kib'] / 1024:>12.1f}"
        )
    print("\nRSS as M grows (engine, N=8):")
    for mm in (m, m * 4):
        eng = measure("engine", 8, mm)
        print(f"  M={mm:>7}: {eng['events']:>8} events, peak RSS {eng['rss_kib'] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
