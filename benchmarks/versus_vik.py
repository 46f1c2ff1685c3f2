"""Benchmark: vik-tui against vik itself, the same workflow and the same provider stream.

    python benchmarks/versus_vik.py                       # 1 4 8 16 flooding agents, 100 agents at 5 lines/s
    python benchmarks/versus_vik.py -n 1 4 --repeats 5 --paced-agents 0
    VIK_BIN=/path/to/vik python benchmarks/versus_vik.py
    git archive <rev> vik_tui | tar -x -C /tmp/old && python benchmarks/versus_vik.py --also /tmp/old

vik is the real binary: `$VIK_BIN`, else `../shared/reference/vik-a4b1e82/vik` beside this
repository. Both tools run one workflow file, written once per run in vik's schema (one stage,
N issues, `max_issue_concurrency: N`, one intake cycle, `idle_sec: 1`), with a fake `codex`
first on PATH (both look `codex` up there):

- flooding: `codex` `cat`s a 100,000-line Codex `exec --json` stream (benchmarks/codex_stream.py),
  so the agents cost next to nothing and the supervisor is the bottleneck;
- paced: `codex` replays a 300-line stream of the same shape at 5 lines a second, one write per
  line (benchmarks/paced_agent.py): 100 agents for 60 s, a realistic day's pace.

Measured from outside, whole processes (benchmarks/measure.py): wall from spawn to exit (start-up
and vik's closing `idle_sec` sleep included: vik's intake sleeps once more before it stops, so
its 1-agent wall has a 1 s floor). CPU is the user+sys of the supervisor's whole process tree
(every thread, and helper processes such as vik-tui's readers; `wait4` of the tree) minus what
the agents report they used themselves (each writes its own user+sys with `times` when it
ends), so the agents' work is left out for both tools. Peak RSS is the larger of the
supervisor's own high-water mark (`wait4`) and the largest sum of the resident memory of the
supervisor and its helper processes, sampled every 0.2 s (agents left out). events/s = agent
stdout lines (N x lines) / wall; CPU per 100k events is per agent stdout line too, so a tool
that writes more records per line pays for them.

Nothing may win by dropping work: after every run, every session file is counted. vik a4b1e82
writes one record per Codex line and one more for `turn.completed`'s usage; vik-tui writes what
its own Codex mapper gives for the stream (asked in a subprocess of that source tree), its
outcome riding on the last record. A run whose counts differ is reported as failed, not timed.

Runs alternate (vik, vik-tui, then vik-tui, vik, ...) so both tools see the same moments of a
shared machine; each tool first runs once unmeasured (a warm-up that also fills Python's
bytecode cache, as an installed package has it). Every cell shows the median and the min-max over the runs; the ratio row is
the median of per-pair ratios (vik-tui / vik). `--also DIR` adds the vik_tui package of another
source tree to the same interleaved runs (a before/after on a noisy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml
from codex_stream import codex_lines, write_agent
from measure import ProcStats, run_measured

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
DEFAULT_VIK = ROOT.parent / "shared" / "reference" / "vik-a4b1e82" / "vik"
PACED_AGENT = HERE / "paced_agent.py"


@dataclass
class Tool:
    """One supervisor under test: how to start it, and how many records each session must hold."""

    name: str
    argv: Callable[[Path], list[str]]
    expected: Callable[[Path], int]  # records per session for the stream in this file
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    stats: ProcStats
    events: int  # agent stdout lines the run had to take in
    cpu: float  # seconds of the supervisor's tree, the agents' own left out
    rss_mib: float  # the supervisor's peak, with its helper processes


def find_vik() -> Path:
    """`$VIK_BIN`, else the reference build beside the repository; exit 1 saying so when neither."""
    given = os.environ.get("VIK_BIN")
    path = Path(given) if given else DEFAULT_VIK
    if path.is_file() and os.access(path, os.X_OK):
        return path
    where = f"VIK_BIN={given} is not an executable file" if given else f"{DEFAULT_VIK} does not exist"
    print(
        f"versus_vik: no vik binary to compare with: {where}.\n"
        "Build vik (github.com/yii-labs/vik) and point VIK_BIN at it, e.g. VIK_BIN=~/vik/target/release/vik",
        file=sys.stderr,
    )
    raise SystemExit(1)


def vik_expected(stream: Path) -> int:
    """vik a4b1e82's Codex adapter: one record per line, two for a `turn.completed` with usage."""
    count = 0
    with open(stream, "rb") as handle:
        for line in handle:
            obj = orjson.loads(line)
            count += 2 if obj.get("type") == "turn.completed" and obj.get("usage") else 1
    return count


def vik_tui_expected(src: Path | None) -> Callable[[Path], int]:
    """What the CodexMapper of that source tree makes of the stream, counted in a subprocess."""
    code = (
        "import sys, orjson\n"
        "from vik_tui.agents.codex import CodexMapper\n"
        "m = CodexMapper()\n"
        "print(sum(len(m.feed(orjson.loads(line))) for line in open(sys.argv[1], 'rb')))\n"
    )

    def count(stream: Path) -> int:
        env = dict(os.environ, PYTHONPATH=str(src or ROOT))
        out = subprocess.run(
            [sys.executable, "-c", code, str(stream)], env=env, capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    return count


def tools(vik: Path, also: list[Path]) -> list[Tool]:
    found = [
        Tool("vik", lambda wf: [str(vik), "run", str(wf)], vik_expected),
        Tool("vik-tui", lambda wf: [sys.executable, "-m", "vik_tui", "run", str(wf)], vik_tui_expected(None)),
    ]
    for i, src in enumerate(also, 1):
        found.append(
            Tool(
                f"vik-tui^{i}",
                lambda wf: [sys.executable, "-m", "vik_tui", "run", str(wf)],
                vik_tui_expected(src),
                env={"PYTHONPATH": str(src)},
            )
        )
    return found


def write_workflow(run_dir: Path, n: int) -> Path:
    """One stage, N issues, all at once, one intake cycle: vik's schema, read by both tools."""
    tracker = run_dir / "issues.json"
    tracker.write_text(json.dumps([{"id": f"BENCH-{i}", "title": f"issue {i}", "state": "todo"} for i in range(n)]))
    workflow = {
        "loop": {"max_issue_concurrency": n, "max_iterations": 1},
        "workspace": {"root": str(run_dir / "home")},
        "agents": {"coder": {"runtime": "codex", "model": "gpt-5.5"}},
        "issues": {"pull": {"command": f"cat '{tracker}'", "idle_sec": 1}},
        "issue": {"stages": {"implement": {"when": {"state": "todo"}, "agent": "coder", "prompt": "go"}}},
    }
    path = run_dir / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return path


def check_sessions(tool: Tool, run_dir: Path, n: int, expected: int, log: Path) -> None:
    """Every issue has one session file of exactly `expected` records, whole lines, the
    completion (vik-tui: the outcome) last."""
    sessions = sorted((run_dir / "home").glob("workflows/*/sessions/*/*.jsonl"))
    problems = []
    if len(sessions) != n:
        problems.append(f"{len(sessions)} session files for {n} issues")
    for session in sessions:
        data = session.read_bytes()
        lines = data.splitlines()
        last = orjson.loads(lines[-1]) if lines else {}
        if len(lines) != expected or not data.endswith(b"\n"):
            problems.append(f"{session.name}: {len(lines)} records, {expected} expected")
        elif last.get("kind") != "completed" or (tool.name != "vik" and "outcome" not in last):
            problems.append(f"{session.name}: the last record is not the completion: {str(last)[:200]}")
    if problems:
        tail = log.read_text(errors="replace")[-1500:]
        raise SystemExit(f"{tool.name} lost work ({n} agents): " + "; ".join(problems[:4]) + f"\n{tail}")


def run_once(tool: Tool, work: Path, agent_bin: Path, n: int, lines: int, expected: int, timeout: float) -> Run:
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"{tool.name}-"))
    cpu_dir = work / "agent-cpu"
    shutil.rmtree(cpu_dir, ignore_errors=True)
    cpu_dir.mkdir()
    try:
        wf = write_workflow(run_dir, n)
        log = run_dir / "out.log"
        env = dict(os.environ, PATH=f"{agent_bin}{os.pathsep}{os.environ.get('PATH', '')}", **tool.env)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: imports come from the bytecode cache
        # cwd: the run directory, so `-m vik_tui` finds the installed (or PYTHONPATH's) package;
        # the agents' command lines hold the work directory: left out of the summed RSS
        stats = run_measured(tool.argv(wf), run_dir, log, timeout, env, tree_rss=str(agent_bin.parent))
        if stats.timed_out:
            raise SystemExit(f"{tool.name} timed out after {timeout:g} s with {n} agents")
        if stats.returncode != 0:
            raise SystemExit(f"{tool.name} exited {stats.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        check_sessions(tool, run_dir, n, expected, log)
        reports = list(cpu_dir.iterdir())
        if len(reports) != n:
            raise SystemExit(f"{tool.name}: {len(reports)} of {n} agents reported their CPU time")
        agents = sum(_seconds(path.read_text()) for path in reports)
        return Run(stats, n * lines, stats.tree_cpu - agents, max(stats.rss_mib, stats.tree_rss_mib))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _seconds(report: str) -> float:
    """The sum of the figures an agent reported: `times` output (`0m0.012000s ...`) or seconds."""
    total = 0.0
    for word in report.split():
        minutes, _, seconds = word.rstrip("s").rpartition("m")
        total += float(minutes or 0) * 60 + float(seconds)
    return total


def agent_dir(work: Path, name: str, body: str) -> Path:
    """A directory holding one executable `codex` (a shell script), first on PATH for both tools."""
    directory = work / name
    directory.mkdir()
    script = directory / "codex"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return directory


def flood_agent(work: Path, stream: Path, name: str = "flood-bin") -> Path:
    """`cat` the stream, then report the shell's and cat's CPU time (`times`)."""
    return agent_dir(work, name, f"cat '{stream}'\ntimes > '{work / 'agent-cpu'}'/$$")


def paced_agent(work: Path, stream: Path, rate: float) -> Path:
    cpu = work / "agent-cpu"
    return agent_dir(work, "paced-bin", f"exec '{sys.executable}' -I -S '{PACED_AGENT}' '{stream}' {rate:g} '{cpu}'")


def spread(values: list[float], fmt: str) -> str:
    """median (min-max)"""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def print_rows(label: str, results: dict[str, list[Run]]) -> None:
    names = list(results)
    for name in names:
        runs = results[name]
        walls = [r.stats.wall for r in runs]
        print(
            f"{label:<18} | {name:<11} | {spread(walls, '.2f'):>20} | "
            f"{spread([r.events / r.stats.wall for r in runs], ',.0f'):>27} | "
            f"{spread([r.cpu / r.events * 1e5 for r in runs], '.3f'):>21} | "
            f"{spread([r.rss_mib for r in runs], '.0f'):>13}"
        )
        label = ""
    vik = results["vik"]
    for name in names[1:]:
        pairs = list(zip(results[name], vik, strict=True))
        rate = statistics.median([v.stats.wall / t.stats.wall for t, v in pairs])
        cpu = statistics.median([t.cpu / v.cpu for t, v in pairs])
        rss = statistics.median([t.rss_mib / v.rss_mib for t, v in pairs])
        print(
            f"{'':<18} | {name + '/vik':<11} | {'':>20} | {f'x{rate:.2f} events/s':>27} | "
            f"{f'x{cpu:.2f} CPU':>21} | {f'x{rss:.2f} RSS':>13}"
        )


def measure_row(
    all_tools: list[Tool], work: Path, agent_bin: Path, stream: Path, n: int, lines: int, repeats: int, timeout: float
) -> dict[str, list[Run]]:
    expected = {tool.name: tool.expected(stream) for tool in all_tools}
    results: dict[str, list[Run]] = {tool.name: [] for tool in all_tools}
    for repeat in range(repeats):
        order = all_tools if repeat % 2 == 0 else list(reversed(all_tools))  # ABBA: no tool always goes first
        for tool in order:
            results[tool.name].append(run_once(tool, work, agent_bin, n, lines, expected[tool.name], timeout))
    return results


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem = int(handle.readline().split()[1]) / 2**20
    cores = len(os.sched_getaffinity(0))
    return f"{model}, {cores} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--agents", type=int, nargs="*", default=[1, 4, 8, 16], help="flooding agent counts")
    parser.add_argument("--lines", type=int, default=100_000, help="stdout lines per flooding agent (default 100000)")
    parser.add_argument("--paced-agents", type=int, default=100, help="agents at a realistic pace (0: skip the row)")
    parser.add_argument("--paced-rate", type=float, default=5, help="their lines per second (default 5)")
    parser.add_argument("--paced-seconds", type=float, default=60, help="how long each of them talks (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool and row (default 3)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed (default 600)")
    parser.add_argument(
        "--also", type=Path, nargs="*", default=[], help="source trees whose vik_tui joins the runs (rows ^1, ^2, ...)"
    )
    args = parser.parse_args()
    vik = find_vik()
    all_tools = tools(vik, args.also)
    print(f"machine: {machine()}; load average at start {load()}")
    print(f"vik: {vik}; vik-tui: {ROOT}" + "".join(f"; ^{i}: {src}" for i, src in enumerate(args.also, 1)))
    print(f"{args.repeats} interleaved runs per cell: median (min-max); ratio rows: median of per-pair ratios\n")
    header = (
        f"{'agents':<18} | {'tool':<11} | {'wall s':>20} | {'events/s':>27} | "
        f"{'CPU s / 100k events':>21} | {'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="versus-vik-") as tmp:
        work = Path(tmp)
        write_agent(work, "warm", codex_lines(1000))
        warm_bin = flood_agent(work, work / "warm.jsonl", "warm-bin")
        for tool in all_tools:
            run_once(tool, work, warm_bin, 1, 1000, tool.expected(work / "warm.jsonl"), args.timeout)
        if args.agents:
            write_agent(work, "flood", codex_lines(args.lines))
            flood_bin = flood_agent(work, work / "flood.jsonl")
            for n in args.agents:
                results = measure_row(
                    all_tools, work, flood_bin, work / "flood.jsonl", n, args.lines, args.repeats, args.timeout
                )
                print_rows(f"{n} flooding", results)
        if args.paced_agents:
            lines = round(args.paced_rate * args.paced_seconds)
            write_agent(work, "paced", codex_lines(lines))
            paced_bin = paced_agent(work, work / "paced.jsonl", args.paced_rate)
            results = measure_row(
                all_tools, work, paced_bin, work / "paced.jsonl", args.paced_agents, lines, args.repeats, args.timeout
            )
            print_rows(f"{args.paced_agents} at {args.paced_rate:g} lines/s", results)
    print(f"\nload average at the end {load()}; every session file of every run held every record")


if __name__ == "__main__":
    main()
