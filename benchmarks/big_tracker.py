"""A benchmark workflow on a big tracker: N issues, a few in a stage's state, fake agents talking.

    python benchmarks/big_tracker.py DIR [--issues 10000] [--active 20] [--seconds 60]

writes DIR/workflow.yml and DIR/pull.py. The pull command prints every issue as JSON; `active`
of them are `todo` (the stage's state), the rest `backlog`. Each active issue's agent is the
fake Codex CLI of the tests in `talk` mode: a tool call and a message every `interval` seconds
for `seconds` seconds, so the screen has 20 agents streaming while keys are pressed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAKE_CODEX = ROOT / "tests" / "fakes" / "fake_codex"

PULL = """\
import json, sys
n, active = {issues}, {active}
step = max(1, n // active)
out = []
for i in range(n):
    state = "todo" if i % step == 0 and i // step < active else "backlog"
    out.append({{"id": f"ISSUE-{{i:05d}}", "title": f"Issue number {{i}} of a big tracker", "state": state,
                "description": "x" * 200}})
json.dump(out, sys.stdout)
"""


def write_big_tracker(
    work: Path, issues: int = 10_000, active: int = 20, seconds: float = 60.0, interval: float = 0.1
) -> Path:
    """The workflow file; `active` issues spread evenly through the list, so j/k crosses them."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "pull.py").write_text(PULL.format(issues=issues, active=active))
    workflow = {
        "loop": {"max_issue_concurrency": active, "cancel_grace_sec": 2},
        "agents": {
            "codex": {
                "runtime": "codex",
                "command": str(FAKE_CODEX),
                "model": "gpt-5.5",
                "args": {"--mode": "talk", "--sleep": seconds, "--interval": interval},
            }
        },
        "issues": {"pull": {"command": f"{sys.executable} pull.py", "idle_sec": 5}},
        "issue": {"stages": {"work": {"when": {"state": "todo"}, "agent": "codex", "prompt": "go"}}},
        "workspace": {"root": str(work / ".vik")},
    }
    path = work / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    print(write_big_tracker(args.dir, args.issues, args.active, args.seconds, args.interval))


if __name__ == "__main__":
    main()
