"""Benchmark: what issue #9's floods and crashes cost the supervisor (docs/benchmarks.md).

    python benchmarks/chaos.py                 # every row
    python benchmarks/chaos.py --seconds 5     # shorter floods

Each row runs `vik-tui run --headless` in a fresh child process on a real workflow and reads
that process's peak RSS from `wait4` (its agents, hooks and pull commands are not counted):

- hook flood: a `before_run` hook runs `cat /dev/zero` until `loop.hook_timeout_sec`;
- pull flood: the pull command runs `cat /dev/zero >&2` until `loop.pull_timeout_sec`;
- pull over the limit: the pull command prints 65 MiB on stdout;
- recovery after kill -9: N agents that ignore SIGTERM, each with a `setsid` grandchild, are
  running when the supervisor gets SIGKILL; the restart's sweep time (from its `recovery:` log
  line) and the time from its start to its first `stage_started`.

The long-line rows (10/30/300 MiB) are in `engine_stream.py --big-mb`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "tests" / "fakes" / "chaos_agent"


class Run:
    """One headless supervisor in a child process, its JSON events read as they come."""

    def __init__(self, workflow: Path) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vik_tui", "run", "--headless", "--json", "--no-watch", str(workflow)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=workflow.parent,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            start_new_session=True,
        )
        self.events: list[tuple[float, dict[str, Any]]] = []

    def until(self, name: str, timeout: float = 120.0, pattern: str | None = None) -> tuple[float, dict[str, Any]]:
        """Read events until one named `name` (whose message matches `pattern`) arrives."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for raw in self.proc.stdout:
            event = json.loads(raw)
            stamp = time.monotonic() - self.started
            self.events.append((stamp, event))
            if event.get("event") == name and (pattern is None or re.search(pattern, event.get("message", ""))):
                return stamp, event
            if time.monotonic() > deadline:
                break
        raise SystemExit(f"no {name} event; last: {[e for _, e in self.events[-5:]]}")

    def wait(self) -> float:
        """Wait for the exit; the peak RSS in MiB."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.events.append((time.monotonic() - self.started, json.loads(raw)))
        _pid, _status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0
        return usage.ru_maxrss / 1024

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        os.wait4(self.proc.pid, 0)
        self.proc.returncode = -9


def workflow(work: Path, issues: int, **overrides: Any) -> Path:
    (work / "issues.json").write_text(
        json.dumps([{"id": f"C-{i}", "title": "t", "state": "todo"} for i in range(1, issues + 1)])
    )
    data: dict[str, Any] = {
        "loop": {"max_issue_concurrency": issues, "max_iterations": 1, "cancel_grace_sec": 1},
        "workspace": {"root": str(work / "home")},
        "agents": {"coder": {"runtime": "codex", "model": "m", "command": str(AGENT), "args": {"--mode": "complete"}}},
        "issues": {"pull": {"command": f"cat {work / 'issues.json'}", "idle_sec": 1}},
        "issue": {"stages": {"work": {"when": {"state": "todo"}, "agent": "coder", "prompt": "go"}}},
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[section] = value
    path = work / "workflow.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def hook_flood(work: Path, seconds: float) -> str:
    wf = workflow(work, 1, loop__hook_timeout_sec=seconds)
    data = yaml.safe_load(wf.read_text())
    data["issue"]["stages"]["work"]["hooks"] = {"before_run": "cat /dev/zero"}
    wf.write_text(yaml.safe_dump(data, sort_keys=False))
    run = Run(wf)
    run.until("hook_finished")
    return f"hook `cat /dev/zero` for {seconds:g} s (hook_timeout_sec) | peak RSS {run.wait():.0f} MiB"


def pull_flood(work: Path, seconds: float) -> str:
    wf = workflow(work, 1, loop__pull_timeout_sec=seconds)
    data = yaml.safe_load(wf.read_text())
    data["issues"]["pull"]["command"] = "cat /dev/zero >&2"
    wf.write_text(yaml.safe_dump(data, sort_keys=False))
    run = Run(wf)
    run.until("intake_failed")
    return f"pull `cat /dev/zero >&2` for {seconds:g} s (pull_timeout_sec) | peak RSS {run.wait():.0f} MiB"


def pull_over_limit(work: Path) -> str:
    wf = workflow(work, 1)
    data = yaml.safe_load(wf.read_text())
    data["issues"]["pull"]["command"] = "head -c 68157440 /dev/zero"
    wf.write_text(yaml.safe_dump(data, sort_keys=False))
    run = Run(wf)
    stamp, _ = run.until("intake_failed")
    return f"pull printing 65 MiB on stdout (limit 64 MiB) | intake_failed after {stamp:.2f} s, peak RSS {run.wait():.0f} MiB"


def recovery(work: Path, agents: int) -> str:
    wf = workflow(work, agents)
    data = yaml.safe_load(wf.read_text())
    data["agents"]["coder"]["args"] = {"--mode": "setsid_hang", "--child-pidfile": str(work / "g"), "--stubborn": True}
    wf.write_text(yaml.safe_dump(data, sort_keys=False))
    first = Run(wf)
    for _ in range(agents):
        first.until("stage_started")
    time.sleep(1.0)  # let every agent start its grandchild
    first.kill9()
    data["agents"]["coder"]["args"] = {"--mode": "complete"}
    wf.write_text(yaml.safe_dump(data, sort_keys=False))
    second = Run(wf)
    _stamp, logged = second.until("log", pattern="^recovery:")
    first_stage, _ = second.until("stage_started")
    second.wait()
    sweep = re.search(r"\(([\d.]+)s\)$", logged["message"])
    return (
        f"recovery after kill -9 with {agents} stubborn agents + setsid grandchildren | "
        f"sweep {float(sweep.group(1)) if sweep else float('nan'):.2f} s, first new stage {first_stage:.2f} s "
        f"after start ({logged['message'].split(';')[1].strip()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of the hook and pull floods (default 10)")
    parser.add_argument("--agents", type=int, default=8, help="agents running at the kill -9 (default 8)")
    args = parser.parse_args()
    rows = []
    for name, job in (
        ("hook", lambda w: hook_flood(w, args.seconds)),
        ("pull", lambda w: pull_flood(w, args.seconds)),
        ("pull-limit", pull_over_limit),
        ("recovery", lambda w: recovery(w, args.agents)),
    ):
        with tempfile.TemporaryDirectory(prefix=f"vik-chaos-{name}-") as tmp:
            rows.append(job(Path(tmp)))
            print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
