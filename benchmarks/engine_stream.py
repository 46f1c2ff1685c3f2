"""Benchmark: the real `vik-tui run --headless` against the floor of the same work.

    python benchmarks/engine_stream.py                      # N = 1, 4, 8 agents x 100k lines, 3 repeats
    python benchmarks/engine_stream.py -n 4 --lines 20000 --repeats 5 --big-mb 10 30 300
    git archive <rev> vik_tui | tar -x -C /tmp/old && python benchmarks/engine_stream.py --versus /tmp/old

The Codex-shaped JSONL (benchmarks/codex_stream.py) is generated once into a file; each agent
is a script that `cat`s it, so the agents cost next to nothing and the supervisor is the
bottleneck. Both sides are whole processes spawned the same way:

- engine: `python -m vik_tui run --headless --json WORKFLOW` on a real workflow (one stage,
  N issues, `max_issue_concurrency: N`, one intake cycle); checked afterwards (every stage
  completed, every session file ends with its outcome).
- floor: benchmarks/floor.py (spawn, read big chunks, split, orjson decode + encode, append).

events/s = agent stdout lines (N x lines) / wall time of the whole process, start-up included.
CPU s/100k = user+sys seconds per 100k lines of the whole tree (the process, the engine's reader
processes for floods, and the agents' `cat`s, the same for engine and floor); RSS = the process's
peak, or its tree's summed peak without the agents when that is larger. Every cell is
the median over the repeats; floor and engine runs alternate so they share the machine's noise.
Below the table: the event loop's lag while the most agents stream (benchmarks/loop_lag.py),
and start-up plus shut-down alone. `--versus DIR` runs the vik_tui of another source tree in
the same interleaved runs (rows marked ^), for a before/after on a shared, noisy machine.
The big-line rows run one agent whose message is a single line of that many MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import yaml
from codex_stream import big_line, codex_lines, write_agent
from measure import ProcStats, run_measured

ROOT = Path(__file__).resolve().parents[1]
FLOOR = Path(__file__).resolve().parent / "floor.py"
LOOP_LAG = Path(__file__).resolve().parent / "loop_lag.py"


def write_workflow(run_dir: Path, agent: Path, n: int) -> Path:
    tracker = run_dir / "issues.json"
    tracker.write_text(json.dumps([{"id": f"BENCH-{i}", "title": f"issue {i}", "state": "todo"} for i in range(n)]))
    workflow = {
        "loop": {"max_issue_concurrency": n, "max_iterations": 1},
        "workspace": {"root": str(run_dir / "home")},
        "agents": {"coder": {"runtime": "codex", "model": "gpt-5.5", "command": str(agent)}},
        "issues": {"pull": {"command": f"cat '{tracker}'", "idle_sec": 5}},
        "issue": {"stages": {"implement": {"when": {"state": "todo"}, "agent": "coder", "prompt": "go"}}},
    }
    path = run_dir / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return path


def _rss(stats: ProcStats) -> float:
    """The process's peak RSS, or its tree's (with its reader processes) when that is larger."""
    return max(stats.rss_mib, stats.tree_rss_mib)


def check_engine(run_dir: Path, out: Path, n: int) -> int:
    """Every stage completed and every session file is whole; returns the number of records."""
    events = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "stage_finished"]
    bad = [e for e in finished if e["state"] != "completed"]
    if len(finished) != n or bad:
        raise SystemExit(f"engine run failed: {len(finished)}/{n} stages finished, not completed: {bad[:2]}")
    records = 0
    for session in (run_dir / "home").glob("workflows/*/sessions/*/*.jsonl"):
        with open(session, "rb") as handle:
            lines = handle.read().splitlines()
        if "outcome" not in orjson.loads(lines[-1]):  # the outcome rides on the last record
            raise SystemExit(f"{session}: no outcome record at the end")
        records += len(lines)
    return records


def run_engine(work: Path, agent: Path, n: int, timeout: float, src: Path | None = None) -> ProcStats:
    """The real `vik-tui run --headless`; `src`: run the vik_tui package of that source tree instead."""
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="engine-"))
    try:
        wf = write_workflow(run_dir, agent, n)
        out = run_dir / "out.jsonl"
        argv = [sys.executable, "-m", "vik_tui", "run", "--headless", "--json", str(wf)]
        env = dict(os.environ, PYTHONPATH=str(src)) if src else None
        # cwd: not ROOT, or `-m` finds ./vik_tui first; the agents' command lines hold the work
        # directory: left out of the summed RSS (the reader processes are in it)
        stats = run_measured(argv, run_dir, out, timeout, env, tree_rss=str(work))
        if not stats.timed_out:
            if stats.returncode != 0:
                raise SystemExit(f"engine exited {stats.returncode}:\n{out.read_text()[-2000:]}")
            check_engine(run_dir, out, n)
        return stats
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def run_floor(work: Path, agent: Path, n: int, expected: int, timeout: float) -> ProcStats:
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="floor-"))
    try:
        out = run_dir / "out.txt"
        argv = [sys.executable, str(FLOOR), str(run_dir / "s"), str(agent), str(n)]
        stats = run_measured(argv, ROOT, out, timeout, tree_rss=str(work))
        if not stats.timed_out and (stats.returncode != 0 or int(out.read_text().split()[-1]) != expected):
            raise SystemExit(f"floor run failed ({stats.returncode}): {out.read_text()[-2000:]}")
        return stats
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def loop_lag(work: Path, agent: Path, n: int, src: Path | None) -> dict[str, float]:
    """The event loop's lateness while N agents stream (benchmarks/loop_lag.py, in-process engine)."""
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="lag-"))
    try:
        wf = write_workflow(run_dir, agent, n)
        env = dict(os.environ, PYTHONPATH=str(src)) if src else None
        out = subprocess.run(
            [sys.executable, str(LOOP_LAG), str(wf)], cwd=run_dir, env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def stream_table(work: Path, agents: list[int], lines: int, repeats: int, timeout: float, versus: Path | None) -> None:
    data = codex_lines(lines)
    size = sum(map(len, data))
    agent = write_agent(work, "codex", data)
    print(f"{lines:,} lines per agent ({size / lines:.0f} B/line average), median of {repeats} runs\n")
    header = (
        f"{'N':>3} | {'engine ev/s':>11} | {'floor ev/s':>10} | {'ratio':>5} | {'CPU s/100k':>10} | "
        f"{'floor CPU s/100k':>16} | {'RSS MiB':>7} | {'floor RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    engines: list[Path | None] = [None, versus] if versus else [None]
    for n in agents:
        total = n * lines
        eng: dict[Path | None, list[ProcStats]] = {src: [] for src in engines}
        flo: list[ProcStats] = []
        for _ in range(repeats):  # interleaved, so every column sees the same moments of a shared machine
            flo.append(run_floor(work, agent, n, total, timeout))
            for src in engines:
                eng[src].append(run_engine(work, agent, n, timeout, src))
        f_rate = median([total / s.wall for s in flo])
        f_cpu = median([s.tree_cpu for s in flo]) / total * 1e5
        f_rss = median([_rss(s) for s in flo])
        for src, runs in eng.items():
            ratio = median([f.wall / e.wall for e, f in zip(runs, flo, strict=True)])
            label = f"{n:>3}" if src is None else "  ^"
            print(
                f"{label} | {median([total / s.wall for s in runs]):>11,.0f} | {f_rate:>10,.0f} | {ratio:>5.2f} | "
                f"{median([s.tree_cpu for s in runs]) / total * 1e5:>10.3f} | {f_cpu:>16.3f} | "
                f"{median([_rss(s) for s in runs]):>7.1f} | {f_rss:>13.1f}"
            )
    print("(ratio = median of the per-repeat engine/floor ratios", end="")
    print(f"; ^ = the engine of {versus}, same runs)" if versus else ")")
    for src in engines:
        lags = [loop_lag(work, agent, agents[-1], src) for _ in range(repeats)]
        print(
            f"event loop lag while {agents[-1]} agents stream (10 ms probe){'' if src is None else f' [{src}]'}: "
            f"p50 {median([x['p50'] for x in lags]):.1f} ms, p95 {median([x['p95'] for x in lags]):.1f} ms, "
            f"max {median([x['max'] for x in lags]):.1f} ms"
        )
    tiny = write_agent(work, "tiny", codex_lines(10))
    for src in engines:
        runs = [run_engine(work, tiny, 1, timeout, src) for _ in range(repeats)]
        floors = [run_floor(work, tiny, 1, 10, timeout) for _ in range(repeats)]
        print(
            f"start-up and shut-down alone (1 agent, 10 lines){'' if src is None else f' [{src}]'}: "
            f"engine {median([s.wall for s in runs]):.2f} s wall, {median([s.cpu for s in runs]):.2f} s CPU; "
            f"floor {median([s.wall for s in floors]):.2f} s wall, {median([s.cpu for s in floors]):.2f} s CPU"
        )


def big_line_table(work: Path, sizes: list[int], repeats: int, timeout: float) -> None:
    print(f"\nOne agent, one line of X MiB (median of {repeats}; timeout {timeout:g} s)\n")
    header = f"{'MiB':>4} | {'engine s':>8} | {'floor s':>7} | {'CPU s':>6} | {'floor CPU s':>11} | {'RSS MiB':>7} | {'floor RSS MiB':>13}"
    print(header)
    print("-" * len(header))
    for mib in sizes:
        agent = write_agent(work, f"big{mib}", big_line(mib))
        eng: list[ProcStats] = []
        flo: list[ProcStats] = []
        for _ in range(repeats):
            flo.append(run_floor(work, agent, 1, 4, timeout))
            eng.append(run_engine(work, agent, 1, timeout))
            if eng[-1].timed_out:
                break
        if any(s.timed_out for s in eng):
            e_wall, e_cpu, e_rss = f">{timeout:g}", "-", "-"
        else:
            e_wall = f"{median([s.wall for s in eng]):.2f}"
            e_cpu = f"{median([s.cpu for s in eng]):.2f}"
            e_rss = f"{median([s.rss_mib for s in eng]):.0f}"
        print(
            f"{mib:>4} | {e_wall:>8} | {median([s.wall for s in flo]):>7.2f} | {e_cpu:>6} | "
            f"{median([s.cpu for s in flo]):>11.2f} | {e_rss:>7} | {median([s.rss_mib for s in flo]):>13.0f}"
        )
        (work / f"big{mib}.jsonl").unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--agents", type=int, nargs="*", default=[1, 4, 8], help="agent counts (default 1 4 8)")
    parser.add_argument("--lines", type=int, default=100_000, help="stdout lines per agent (default 100000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is shown (default 3)")
    parser.add_argument("--big-mb", type=int, nargs="*", default=[10, 30, 300], help="single-line sizes in MiB")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a run is killed (default 120)")
    parser.add_argument(
        "--versus", type=Path, default=None, help="also run the vik_tui of this source tree (e.g. a `git archive`)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vik-bench-") as tmp:
        work = Path(tmp)
        if args.agents:
            stream_table(work, args.agents, args.lines, args.repeats, args.timeout, args.versus)
        if args.big_mb:
            big_line_table(work, args.big_mb, args.repeats, args.timeout)


if __name__ == "__main__":
    main()
