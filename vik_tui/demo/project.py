"""Write the built-in demo project: tracker.json, prompts/*.md and workflow.yml.

`vik-tui demo` calls `write_demo_project()` and then supervises the result like any other
workflow, so the demo goes through the real config loader, intake, templates and Codex
adapter. The tracker file is never overwritten, so restarting the demo resumes where it was;
workflow.yml and prompts are rewritten every time so they match the installed version (and the
absolute interpreter and tracker paths stay right if the directory or venv moved).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from vik_tui.demo.tracker import Issue, TrackerError, load_issues, write_issues

DEMO_FINAL_STATE = "done"
TRACKER_FILE = "tracker.json"
WORKFLOW_FILE = "workflow.yml"

DEMO_ISSUES: tuple[Issue, ...] = (
    {
        "id": "DEMO-1",
        "title": "Add a --dry-run flag to the sync command",
        "state": "todo",
        "description": (
            "sync writes to the remote store immediately. Add --dry-run that prints the "
            "planned uploads and deletions without performing them, and exits 0."
        ),
        "labels": ["feature", "cli"],
    },
    {
        "id": "DEMO-2",
        "title": "Fix off-by-one in /api/orders pagination",
        "state": "todo",
        "description": (
            "Requesting page 2 with page_size=20 repeats the last order of page 1. The offset "
            "is computed as page * size - 1; it should be (page - 1) * size. Add a regression test."
        ),
        "labels": ["bug", "api"],
    },
    {
        "id": "DEMO-3",
        "title": "Stabilise the login integration test",
        "state": "todo",
        "description": (
            "tests/integration/test_login.py fails about one run in five on CI because it "
            "waits on a fixed sleep for the session cookie. Wait on the response instead."
        ),
        "labels": ["flaky", "tests"],
    },
    {
        "id": "DEMO-4",
        "title": "Retry webhook deliveries with exponential backoff",
        "state": "todo",
        "description": (
            "A failed webhook delivery is dropped. Retry up to 5 times with backoff "
            "2^n seconds (capped at 5 minutes) and record each attempt in the delivery log."
        ),
        "labels": ["feature", "reliability"],
    },
    {
        "id": "DEMO-5",
        "title": "Document the REST API error codes",
        "state": "todo",
        "description": (
            "docs/api.md lists endpoints but not errors. Add a table of every error code the "
            "API returns, with its HTTP status, meaning and a suggested client action."
        ),
        "labels": ["docs"],
    },
    {
        "id": "DEMO-6",
        "title": "Switch request logging to structured JSON",
        "state": "todo",
        "description": (
            "Request logs are free text, which the log pipeline cannot index. Emit one JSON "
            "object per request with method, path, status, duration_ms and request_id."
        ),
        "labels": ["observability"],
    },
)

_PROMPTS: dict[str, str] = {
    "plan": """\
You are planning the work for issue {{ issue.id }}: {{ issue.title }}

{{ issue.description }}

Survey the repository in your working directory, then write a short, step-by-step plan
to NOTES.md. Each step should be small enough to verify with a test. Do not change code yet.
When the plan is written, move the issue to the next state.

ISSUE_ID: {{ issue.id }}
NEXT_STATE: work
""",
    "implement": """\
You are implementing issue {{ issue.id }}: {{ issue.title }}

{{ issue.description }}

Follow the plan in NOTES.md. Keep the change focused, run the tests, and add a line to
NOTES.md describing what you changed. When it is done, move the issue to review.

ISSUE_ID: {{ issue.id }}
NEXT_STATE: review
""",
    "review": """\
You are reviewing the work on issue {{ issue.id }}: {{ issue.title }}

{{ issue.description }}

Read NOTES.md and the working tree. Check that the description is fully addressed and the
tests pass, and record your verdict in NOTES.md. If it is good, move the issue to done.

ISSUE_ID: {{ issue.id }}
NEXT_STATE: done
""",
}

_WORKFLOW = """\
# The vik-tui built-in demo. The agent is simulated (runtime: demo): it needs no account,
# really runs harmless commands in each issue workspace and moves issues in tracker.json.
# This file and prompts/ are rewritten on every `vik-tui demo`; tracker.json is kept.
# Workspaces and session logs land in .vik/ beside this file (there is no `workspace` key).

loop:
  max_issue_concurrency: 3
  max_iterations: null
  wait_ms: 200
  retry:
    max_attempts: 3
    backoff_sec: 2
    max_backoff_sec: 10

agents:
  demo:
    runtime: demo
    model: simulated
    args:  # forwarded as written, as vik does: the keys carry their own dashes
      --speed: {speed}
      --tracker: {tracker}

issues:
  pull:
    command: {pull_command}
    idle_sec: 1

# The agent moves its issue and goes on talking; the next state's stage waits for it and for
# its after_run (the pane title says "waiting for plan to finish"): one state at a time.
issue:
  hooks:
    after_create: {after_create}
  stages:
    plan:
      when:
        state: todo
      agent: demo
      prompt_file: prompts/plan.md
      hooks:
        after_run: {after_run}
    implement:
      when:
        state: work
      agent: demo
      prompt_file: prompts/implement.md
      hooks:
        after_run: {after_run}
    review:
      when:
        state: review
      agent: demo
      prompt_file: prompts/review.md
      hooks:
        after_run: {after_run}
"""


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar; JSON string syntax is valid YAML and escapes everything."""
    return json.dumps(text)


def _write_if_changed(path: Path, text: str) -> None:
    """Rewrite only on change, so a file watcher does not see a needless reload."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.write_text(text, encoding="utf-8")


def workflow_text(directory: Path, speed: float = 1.0) -> str:
    """The demo workflow.yml for a project in `directory`."""
    tracker = (directory / TRACKER_FILE).resolve()
    pull = f"{shlex.quote(sys.executable)} -m vik_tui.demo.tracker --file {TRACKER_FILE} list"
    return _WORKFLOW.format(
        speed=repr(float(speed)),
        tracker=_yaml_str(str(tracker)),
        pull_command=_yaml_str(pull),
        after_create=_yaml_str(
            "git init -q . 2>/dev/null && printf '# %s\\n\\n%s\\n' "
            "{{ issue.id | shquote }} {{ issue.title | shquote }} > README.md"
            " && git add README.md && git -c user.name=vik-demo -c user.email=demo@vik-tui.invalid"
            " commit -qm 'workspace created' 2>/dev/null || true"
        ),
        after_run=_yaml_str(
            "git add -A && git -c user.name=vik-demo -c user.email=demo@vik-tui.invalid"
            " commit -qm {{ (issue.id ~ ' ' ~ issue.stage) | shquote }} 2>/dev/null || true"
        ),
    )


def write_demo_project(directory: Path, speed: float = 1.0) -> Path:
    """Lay out the demo project in `directory` (created if needed); returns workflow.yml's path.

    Idempotent: an existing tracker.json is kept so progress survives restarts; workflow.yml
    and the prompts are brought up to date.
    """
    if not speed > 0:
        raise ValueError(f"speed must be greater than 0 (got {speed})")
    directory = Path(directory).expanduser().resolve()
    (directory / "prompts").mkdir(parents=True, exist_ok=True)
    tracker = directory / TRACKER_FILE
    if not tracker.exists():
        write_issues(tracker, [dict(issue, labels=list(issue["labels"])) for issue in DEMO_ISSUES])
    for name, text in _PROMPTS.items():
        _write_if_changed(directory / "prompts" / f"{name}.md", text)
    workflow = directory / WORKFLOW_FILE
    _write_if_changed(workflow, workflow_text(directory, speed))
    return workflow


def demo_all_done(directory: Path) -> bool:
    """True when every tracker issue reached DEMO_FINAL_STATE (so the demo can say it finished)."""
    try:
        issues = load_issues(Path(directory) / TRACKER_FILE)
    except TrackerError:
        return False
    return bool(issues) and all(issue["state"] == DEMO_FINAL_STATE for issue in issues)


def reset_demo(directory: Path) -> None:
    """Start the demo over: fresh tracker and no fail-once markers (workspaces are kept)."""
    directory = Path(directory).expanduser().resolve()
    (directory / TRACKER_FILE).unlink(missing_ok=True)
    for marker in directory.glob(".failed-once-*"):
        marker.unlink(missing_ok=True)
