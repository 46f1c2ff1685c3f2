"""Benchmark: what `vik-tui run` costs before and besides its agents (start-up and exit).

    python benchmarks/startup.py                          # 9 runs
    python benchmarks/startup.py --runs 9 --also /tmp/old # and another source tree's vik_tui, interleaved

`vik-tui run` on the workflow of `versus_vik.py` (vik's schema, one stage, `max_iterations: 1`)
with one issue whose agent (a fake `codex` first on PATH) prints 4 Codex lines. Per run, from
outside the process: the wall time and CPU time (every thread of the supervisor, from
/proc/PID/task/*/schedstat; its agents and the pull left out) when its first line (`supervisor
started`) arrives; the wall time when its last line arrives and when it has exited, and its own
user+sys then; its peak RSS (VmHWM, the last reading while it has memory). Medians and min-max over the runs;
the trees' runs alternate, after one unmeasured warm-up each (the bytecode cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codex_stream import codex_lines, write_agent
from versus_vik import flood_agent, load, machine, write_workflow

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    first_wall: float  # s, spawn to the first stdout line
    first_cpu: float  # s of the supervisor's threads by then
    last_wall: float  # s, spawn to the last stdout line
    wall: float  # s, spawn to exit
    cpu: float  # s of the supervisor's own user+sys at exit (/proc/PID/stat of the zombie)
    rss_mib: float  # VmHWM, read at each line (a high-water mark: the last reading it has)


def thread_cpu(pid: int) -> float:
    """Seconds on CPU of every thread of `pid` (schedstat: nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def peak_rss(pid: int) -> float:
    """VmHWM in MiB; 0 once the process is exiting (its memory is gone)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def own_cpu(pid: int) -> float:
    """user+sys of the process itself (children excluded), read from the zombie's stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(src: Path | None, work: Path, agent_bin: Path) -> Run:
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="run-"))
    try:
        wf = write_workflow(run_dir, 1)
        env = dict(os.environ, PATH=f"{agent_bin}{os.pathsep}{os.environ.get('PATH', '')}")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vik_tui", "run", str(wf)], cwd=run_dir, env=env, stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_wall, first_cpu = time.perf_counter() - start, thread_cpu(proc.pid)
        last_wall, rss = first_wall, peak_rss(proc.pid)
        for line in proc.stdout:
            last_wall, rss = time.perf_counter() - start, max(rss, peak_rss(proc.pid))
            if b"supervisor stopped" in line:
                break
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        cpu = own_cpu(proc.pid)
        if proc.wait() != 0 or b"supervisor started" not in first:
            raise SystemExit(f"vik-tui run failed ({proc.returncode}): {first!r}")
        return Run(first_wall, first_cpu, last_wall, wall, cpu, rss)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per tree (default 9)")
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="source trees whose vik_tui joins the runs")
    args = parser.parse_args()
    trees: list[Path | None] = [None, *args.also]
    names = ["vik-tui"] + [f"vik-tui^{i}" for i in range(1, len(trees))]
    print(f"machine: {machine()}; load average at start {load()}")
    print(f"vik-tui: {ROOT}" + "".join(f"; ^{i}: {src}" for i, src in enumerate(args.also, 1)))
    print(f"{args.runs} interleaved runs per tree: median (min-max)\n")
    runs: dict[str, list[Run]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        work = Path(tmp)
        (work / "agent-cpu").mkdir()
        write_agent(work, "four", codex_lines(4))
        agent_bin = flood_agent(work, work / "four.jsonl", "four-bin")
        for src in trees:  # warm-up: the bytecode cache
            run_once(src, work, agent_bin)
        for i in range(args.runs):
            order = list(zip(names, trees, strict=True))
            for name, src in order if i % 2 == 0 else reversed(order):
                runs[name].append(run_once(src, work, agent_bin))
    rows: list[tuple[str, Callable[[list[Run]], list[float]], str]] = [
        ("run: CPU until its first line, s", lambda r: [x.first_cpu for x in r], ".3f"),
        ("run: wall until its first line, s", lambda r: [x.first_wall for x in r], ".3f"),
        ("run: whole run, CPU s", lambda r: [x.cpu for x in r], ".3f"),
        ("run: whole run, wall s", lambda r: [x.wall for x in r], ".3f"),
        ("run: exit after its last line, ms", lambda r: [1000 * (x.wall - x.last_wall) for x in r], ".0f"),
        ("run: peak RSS, MiB", lambda r: [x.rss_mib for x in r], ".1f"),
    ]
    print(f"{'':<38} | " + " | ".join(f"{name:>22}" for name in names))
    for label, pick, fmt in rows:
        print(f"{label:<38} | " + " | ".join(f"{spread(pick(runs[name]), fmt):>22}" for name in names))
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
