"""Pending retries that survive a restart: `service/retries.jsonl`.

Symphony forgets every pending retry and its attempt count when it restarts; so did we. The
Supervisor writes the whole set each time it changes (a retry scheduled, started, dropped or
cancelled), atomically (temp file, fsync, rename), one retry per line: a file a crash or a
hand edit damaged loses only the lines that cannot be read, each said in a warning. The due
time is wall-clock (epoch seconds), so a restart keeps the schedule instead of starting the
backoff again; the attempt number goes on, so `max_attempts` holds across restarts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vik_tui.engine.service.atomic import write_atomic

RETRIES_FILE = "retries.jsonl"  # in service/
VERSION = 1


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """One retry waiting for its due time: `attempt` is the attempt that failed (the retry is
    attempt + 1), `state` the issue state the stage ran for, `error` why it failed."""

    issue: str
    stage: str
    attempt: int
    due_at: float  # epoch seconds (wall clock: survives a restart, unlike the loop's clock)
    error: str | None = None
    state: str | None = None
    not_before: str | None = None  # why it may not start earlier than due (a rate limit), for explain

    def to_line(self) -> str:
        return json.dumps({"v": VERSION, **asdict(self)}, ensure_ascii=False, separators=(",", ":"))


def _parse(line: str) -> PendingRetry:
    """One line back into a retry; ValueError with a short reason when it is not one."""
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    issue, stage, attempt, due_at = data.get("issue"), data.get("stage"), data.get("attempt"), data.get("due_at")
    if not isinstance(issue, str) or not issue or not isinstance(stage, str) or not stage:
        raise ValueError("no issue or stage")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise ValueError(f"attempt must be a whole number (got {attempt!r})")
    if not isinstance(due_at, int | float) or isinstance(due_at, bool) or due_at != due_at:
        raise ValueError(f"due_at must be a number (got {due_at!r})")
    error, state, not_before = data.get("error"), data.get("state"), data.get("not_before")
    return PendingRetry(
        issue,
        stage,
        attempt,
        float(due_at),
        error if isinstance(error, str) else None,
        state if isinstance(state, str) else None,
        not_before if isinstance(not_before, str) else None,
    )


class RetryStore:
    """The file and the last set written (an unchanged set is not written again)."""

    def __init__(self, service_dir: Path) -> None:
        self.path = service_dir / RETRIES_FILE
        self._written: tuple[PendingRetry, ...] | None = None

    def load(self) -> tuple[list[PendingRetry], list[str]]:
        """The retries in the file and a warning per line that could not be read (the rest
        are kept). A missing file is no retries and no warning."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self._written = ()  # no file is no retries: nothing to write until there are some
            return [], []
        except OSError as exc:
            return [], [f"cannot read {self.path}: {exc.strerror or exc}; pending retries are lost"]
        found: dict[tuple[str, str], PendingRetry] = {}
        warnings: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                retry = _parse(line)
            except ValueError as exc:
                warnings.append(f"{self.path} line {number}: {exc}; that retry is dropped, the others are kept")
                continue
            found[(retry.issue, retry.stage)] = retry  # a later line of the same stage wins
        self._written = tuple(found.values())
        return list(found.values()), warnings

    def save(self, retries: list[PendingRetry]) -> None:
        """Write the whole set atomically, unless it is what the file already holds. Raises OSError."""
        key = tuple(retries)
        if key == self._written:
            return
        write_atomic(self.path, "".join(r.to_line() + "\n" for r in retries))
        self._written = key
