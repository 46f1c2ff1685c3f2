"""A tiny file-based issue tracker for the demo.

The demo workflow's pull command runs `python -m vik_tui.demo.tracker --file tracker.json list`
while several simulated agents move issues at the same time, so every write is atomic (temp
file, fsync, rename: a reader never sees half a file) and movers serialise on an flock'd lock
file beside the tracker (no lost updates between read and write).

The file holds a JSON array of issues: {"id", "title", "state", "description", "labels"}.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vik_tui.engine.service.atomic import write_atomic

TRACKER_ENV = "VIK_DEMO_TRACKER"
DEFAULT_TRACKER_NAME = "tracker.json"

Issue = dict[str, Any]


class TrackerError(Exception):
    """The tracker file is missing, unreadable or not a list of issues."""


def default_tracker_path() -> Path:
    """`$VIK_DEMO_TRACKER` if set, else tracker.json in the current directory."""
    env = os.environ.get(TRACKER_ENV)
    return Path(env).expanduser() if env else Path.cwd() / DEFAULT_TRACKER_NAME


def _normalise(raw: Any) -> Issue:
    """Fill the fields the pull command promises, keeping any extra ones."""
    if not isinstance(raw, dict) or "id" not in raw:
        raise TrackerError(f"not an issue object: {raw!r}")
    issue: Issue = dict(raw)
    issue["id"] = str(raw["id"])
    issue["title"] = str(raw.get("title", ""))
    issue["state"] = str(raw.get("state", ""))
    issue["description"] = str(raw.get("description", ""))
    labels = raw.get("labels") or []
    issue["labels"] = [str(label) for label in labels] if isinstance(labels, list) else [str(labels)]
    return issue


def load_issues(path: str | Path) -> list[Issue]:
    """Read every issue; raises TrackerError when the file is missing or malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrackerError(f"tracker file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrackerError(f"cannot read tracker file {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("issues"), list):
        data = data["issues"]
    if not isinstance(data, list):
        raise TrackerError(f"tracker file {path} must hold a JSON array of issues")
    return [_normalise(item) for item in data]


def find_issue(path: str | Path, issue_id: str) -> Issue | None:
    """The issue with this id, or None."""
    for issue in load_issues(path):
        if issue["id"] == issue_id:
            return issue
    return None


def write_issues(path: str | Path, issues: list[Issue]) -> None:
    """Atomically replace the tracker file (`atomic.write_atomic`), keeping its mode."""
    path = Path(path)
    write_atomic(path, json.dumps(issues, indent=2, ensure_ascii=False) + "\n", mode=_file_mode(path))


def _file_mode(path: Path) -> int:
    """Keep the existing file's mode; a new file gets 0644 rather than mkstemp's private 0600.

    (Not derived from os.umask(): reading it means setting it, which races other threads.)
    """
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o644


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive flock on `<tracker>.lock` so read-modify-write is not interleaved."""
    lock_path = Path(path).with_name(Path(path).name + ".lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def move_issue(path: str | Path, issue_id: str, state: str) -> Issue:
    """Set one issue's state and return it; KeyError if no issue has that id."""
    path = Path(path)
    with locked(path):
        issues = load_issues(path)
        for issue in issues:
            if issue["id"] == issue_id:
                issue["state"] = state
                write_issues(path, issues)
                return issue
    raise KeyError(issue_id)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vik_tui.demo.tracker", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        help=f"tracker file (default: ${TRACKER_ENV}, else ./{DEFAULT_TRACKER_NAME})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print all issues as a JSON array")
    move = sub.add_parser("move", help="set an issue's state")
    move.add_argument("id")
    move.add_argument("state")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    path: Path = args.file if args.file is not None else default_tracker_path()
    try:
        if args.command == "list":
            json.dump(load_issues(path), sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
            sys.stdout.flush()
            return 0
        try:
            issue = move_issue(path, args.id, args.state)
        except KeyError:
            print(f"tracker: no issue with id {args.id!r} in {path}", file=sys.stderr)
            return 1
        print(f"{issue['id']} -> {issue['state']}", flush=True)
        return 0
    except TrackerError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        silence_stdout()
        return 1


def silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so exit-time flushing stays quiet (the
    tracker's and the demo agent's)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
