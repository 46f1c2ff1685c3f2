"""A simulated coding agent that speaks Codex's `exec --json` JSONL.

`vik-tui demo` needs a live-looking agent without any model account, so this one reads the
rendered prompt from stdin, finds its `ISSUE_ID:` and `NEXT_STATE:` lines, and then, at a
human pace, thinks, talks, really runs a few harmless commands in its working directory,
really appends to NOTES.md, moves its issue in the demo tracker and finishes with
`turn.completed` and token usage: the same event shapes a real `codex exec --json` prints, so
it exercises the real Codex adapter.

Issues labelled "flaky" fail once per (issue, next state) with `turn.failed` and exit code 1,
remembered by a marker file, so the supervisor's retry path is visible in the demo.

    python -m vik_tui.demo.agent [--speed X] [--tracker PATH] [--fail-once-marker DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vik_tui.demo.tracker import TRACKER_ENV, Issue, TrackerError, load_issues, move_issue, silence_stdout

FLAKY_LABEL = "flaky"
FAILURE_MESSAGE = "simulated failure: the test suite timed out"
NOTES_FILE = "NOTES.md"
_OUTPUT_LIMIT = 4000

_ISSUE_ID_RE = re.compile(r"^[ \t]*ISSUE_ID:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_NEXT_STATE_RE = re.compile(r"^[ \t]*NEXT_STATE:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


class AgentFailure(Exception):
    """A reason to end the turn with `turn.failed` and a non-zero exit."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class PromptInfo:
    """What the agent needs from the prompt: which issue and where to move it."""

    issue_id: str | None
    next_state: str | None


def parse_prompt(text: str) -> PromptInfo:
    """Find the machine-readable `ISSUE_ID:` / `NEXT_STATE:` lines (first of each wins)."""
    issue = _ISSUE_ID_RE.search(text)
    state = _NEXT_STATE_RE.search(text)
    return PromptInfo(issue.group(1) if issue else None, state.group(1) if state else None)


@dataclass(frozen=True)
class Script:
    """Per-stage wording, so plan / implement / review read differently in the UI."""

    doing: str
    reasoning: str
    opening: str
    note: str
    summary: str


_SCRIPTS: dict[str, Script] = {
    "work": Script(
        doing="planning",
        reasoning=(
            '**Scoping {id}**\n\nBefore proposing changes for "{title}" I should look at the '
            "repository layout and its current state, then break the work into small steps "
            "that can each be verified."
        ),
        opening="I'll survey the workspace for {id} and write down a short plan.",
        note='plan: split "{title}" into small, testable steps',
        summary=(
            "Plan for {id} written to NOTES.md: survey done, the change is broken into small "
            "steps with a test for each. Moved the issue to `{next}`."
        ),
    ),
    "review": Script(
        doing="implementing",
        reasoning=(
            '**Implementing {id}**\n\nThe plan for "{title}" is in NOTES.md. I\'ll check the '
            "working tree, make the change, and run a quick sanity check before handing it "
            "over for review."
        ),
        opening="Starting on the implementation of {id}: {title}.",
        note='implemented: "{title}" (sanity check passed)',
        summary=(
            "Implemented {id} and recorded the change in NOTES.md; the sanity check passes. "
            "Moved the issue to `{next}` for review."
        ),
    ),
    "done": Script(
        doing="reviewing",
        reasoning=(
            "**Reviewing {id}**\n\nI should read the notes left by the earlier stages for "
            '"{title}", check the working tree is clean of surprises, and confirm the '
            "description's acceptance points are covered."
        ),
        opening="Reviewing the work on {id}.",
        note='review: "{title}" looks good, approved',
        summary="Review of {id} complete: the change matches the description. Moved the issue to `{next}`.",
    ),
}
_GENERIC = Script(
    doing="working",
    reasoning='**Working on {id}**\n\nLet me look at the workspace for "{title}" and make progress.',
    opening="Working on {id}: {title}.",
    note='progress on "{title}"',
    summary="Finished this step of {id}. Moved the issue to `{next}`.",
)


@dataclass
class Emitter:
    """Prints Codex-shaped JSONL, one flushed line per event, paced for humans."""

    speed: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    _next_item: int = 0

    def emit(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def pause(self, base: float) -> None:
        """Sleep about `base` seconds (±30 %), divided by --speed."""
        time.sleep(self.rng.uniform(base * 0.7, base * 1.3) / self.speed)

    def item_id(self) -> str:
        item = f"item_{self._next_item}"
        self._next_item += 1
        return item

    def completed(self, item: dict[str, Any]) -> None:
        self.emit({"type": "item.completed", "item": item})

    def reasoning(self, text: str) -> None:
        self.completed({"id": self.item_id(), "type": "reasoning", "text": text})

    def message(self, text: str) -> None:
        self.completed({"id": self.item_id(), "type": "agent_message", "text": text})

    def command(self, argv: list[str], cwd: Path, think: float = 0.6) -> int:
        """Announce, really run argv in cwd, and report its real output and exit status."""
        item_id = self.item_id()
        shown = shlex.join(argv)
        self.emit(
            {
                "type": "item.started",
                "item": {
                    "id": item_id,
                    "type": "command_execution",
                    "command": shown,
                    "aggregated_output": "",
                    "exit_code": None,
                    "status": "in_progress",
                },
            }
        )
        self.pause(think)
        # `python` is shown and passed as argv[0], but this very interpreter is what runs.
        executable = sys.executable if argv[0] == "python" else None
        try:
            proc = subprocess.run(
                argv,
                executable=executable,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=30,
                check=False,
            )
            output = proc.stdout.decode("utf-8", "replace")
            code = proc.returncode
        except subprocess.TimeoutExpired as exc:
            output = (exc.output or b"").decode("utf-8", "replace") + "\n[timed out after 30s]\n"
            code = 124
        except OSError as exc:
            output, code = f"{argv[0]}: {exc.strerror or exc}\n", 127
        if len(output) > _OUTPUT_LIMIT:
            output = output[:_OUTPUT_LIMIT] + "\n[output truncated]\n"
        self.completed(
            {
                "id": item_id,
                "type": "command_execution",
                "command": shown,
                "aggregated_output": output,
                "exit_code": code,
                "status": "completed" if code == 0 else "failed",
            }
        )
        return code

    def file_change(self, path: Path, kind: str) -> None:
        self.completed(
            {
                "id": self.item_id(),
                "type": "file_change",
                "changes": [{"path": str(path), "kind": kind}],
                "status": "completed",
            }
        )

    def usage(self) -> dict[str, int]:
        """Plausible token counts for one turn."""
        input_tokens = self.rng.randint(6_000, 24_000)
        return {
            "input_tokens": input_tokens,
            "cached_input_tokens": int(input_tokens * self.rng.uniform(0.3, 0.8)),
            "cache_write_input_tokens": 0,
            "output_tokens": self.rng.randint(300, 1_800),
            "reasoning_output_tokens": self.rng.randint(64, 640),
        }


def _python(code: str) -> list[str]:
    """argv running `code` with this interpreter (see Emitter.command)."""
    return ["python", "-c", code]


def _commands(next_state: str, cwd: Path) -> list[list[str]]:
    """Two or three harmless, read-only commands suited to the stage."""
    commands = [["ls", "-la"]]
    if shutil.which("git") and (cwd / ".git").exists():
        commands.append(["git", "status", "--short", "--branch"])
    if next_state == "work":
        commands.append(
            _python(
                'import os; n = sum(len(fs) for d, _, fs in os.walk(".") if ".git" not in d.split(os.sep)); '
                'print(n, "files in workspace (excluding .git)")'
            )
        )
    elif next_state == "review":
        commands.append(_python('import platform; print("sanity check: python", platform.python_version(), "ok")'))
    else:
        commands.append(
            _python(
                f'import pathlib; p = pathlib.Path("{NOTES_FILE}"); '
                'print(p.read_text() if p.exists() else "no notes yet", end="")'
            )
        )
    return commands


def _safe_name(text: str) -> str:
    """Make an id or state usable inside a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _append_note(cwd: Path, line: str) -> tuple[Path, str]:
    """Append one dated line to NOTES.md; returns its path and Codex's change kind."""
    path = cwd / NOTES_FILE
    kind = "update" if path.exists() else "add"
    with open(path, "a", encoding="utf-8") as handle:
        if kind == "add":
            handle.write("# Notes\n\n")
        handle.write(f"- {datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
    return path, kind


def _tracker_path(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg.expanduser().resolve()
    env = os.environ.get(TRACKER_ENV)
    return Path(env).expanduser().resolve() if env else None


def _load_issue(tracker: Path, issue_id: str) -> Issue:
    try:
        issues = load_issues(tracker)
    except TrackerError as exc:
        raise AgentFailure(f"demo agent: {exc}", 2) from None
    for issue in issues:
        if issue["id"] == issue_id:
            return issue
    raise AgentFailure(f"demo agent: issue {issue_id} is not in the tracker {tracker}", 2)


def _fail_once(out: Emitter, cwd: Path, issue: Issue, marker: Path) -> None:
    """The flaky path: a test run that times out, then `turn.failed` (issue not moved)."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{issue['id']} failed once on purpose\n", encoding="utf-8")
    out.message(f"Running the test suite for {issue['id']} before changing anything.")
    out.pause(0.6)
    out.command(
        _python(
            'import sys; print("collected 37 items"); print("tests/test_api.py ........"); '
            'print("tests/test_sync.py .."); print("E   Timeout: the test suite exceeded 300s"); '
            "sys.exit(124)"
        ),
        cwd,
        think=1.0,
    )
    out.pause(0.5)
    raise AgentFailure(FAILURE_MESSAGE, 1)


def run(prompt: str, cwd: Path, out: Emitter, tracker: Path | None, marker_dir: Path | None) -> int:
    """One whole turn; raises AgentFailure to end it with `turn.failed`."""
    info = parse_prompt(prompt)
    out.emit({"type": "thread.started", "thread_id": str(uuid.uuid4())})
    out.pause(0.3)
    out.emit({"type": "turn.started"})
    out.pause(0.5)
    if info.issue_id is None:
        raise AgentFailure("demo agent: the prompt has no `ISSUE_ID: <id>` line", 2)
    if info.next_state is None:
        raise AgentFailure("demo agent: the prompt has no `NEXT_STATE: <state>` line", 2)
    if tracker is None:
        raise AgentFailure(f"demo agent: no tracker given (pass --tracker PATH or set {TRACKER_ENV})", 2)
    issue = _load_issue(tracker, info.issue_id)
    script = _SCRIPTS.get(info.next_state, _GENERIC)
    words = {"id": issue["id"], "title": issue["title"] or issue["id"], "next": info.next_state}

    out.reasoning(script.reasoning.format(**words))
    out.pause(1.5)
    if FLAKY_LABEL in issue["labels"]:
        base = marker_dir if marker_dir is not None else tracker.parent
        marker = base / f".failed-once-{_safe_name(issue['id'])}-{_safe_name(info.next_state)}"
        if not marker.exists():
            _fail_once(out, cwd, issue, marker)
    out.message(script.opening.format(**words))
    out.pause(0.8)
    for cmd in _commands(info.next_state, cwd):
        out.command(cmd, cwd)
        out.pause(0.5)
    path, kind = _append_note(cwd, f"{issue['id']} ({script.doing}): {script.note.format(**words)}")
    out.file_change(path, kind)
    out.pause(1.0)
    try:
        move_issue(tracker, issue["id"], info.next_state)
    except (KeyError, TrackerError, OSError) as exc:
        raise AgentFailure(f"demo agent: could not move {issue['id']} to {info.next_state}: {exc}") from None
    out.pause(0.3)
    out.message(script.summary.format(**words))
    out.pause(0.8)
    out.emit({"type": "turn.completed", "usage": out.usage()})
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vik_tui.demo.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=_positive, default=1.0, help="pace multiplier (2 = twice as fast)")
    parser.add_argument("--tracker", type=Path, default=None, help=f"tracker file (default: ${TRACKER_ENV})")
    parser.add_argument(
        "--fail-once-marker",
        type=Path,
        default=None,
        metavar="DIR",
        help="where flaky-failure markers go (default: the tracker's directory)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Unknown args (e.g. a `model`) are ignored."""
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        print(f"demo agent: ignoring arguments {' '.join(unknown)}", file=sys.stderr)
    out = Emitter(speed=args.speed)
    try:
        prompt = sys.stdin.read()
        return run(prompt, Path.cwd(), out, _tracker_path(args.tracker), args.fail_once_marker)
    except AgentFailure as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        try:
            out.emit({"type": "turn.failed", "error": {"message": exc.message}})
        except BrokenPipeError:
            silence_stdout()
        return exc.exit_code
    except BrokenPipeError:
        silence_stdout()
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
