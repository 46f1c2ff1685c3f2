"""Token budgets (ours: `loop.budget`): a ceiling per session and one per UTC day for the
whole workflow.

A token is what the header counts: input + output. The daily count is the sum over sessions,
credited as their `token_usage` records arrive, and rebuilt at start from the session files
written today (a session's total is its outcome's `tokens`, or the sum of its `token_usage`
records when it has no outcome yet): a restart neither forgets what was spent nor counts it
twice. A session that spans midnight counts where its tokens arrived while we ran, and in the
day its file was last written when rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vik_tui.agents.events import Outcome, TokenUsage
from vik_tui.engine.stages.replay import outcome_of, read_session_records


def tokens_of(counts: Mapping[str, int]) -> int:
    """Input + output, the figure every budget compares."""
    return int(counts.get("input", 0) or 0) + int(counts.get("output", 0) or 0)


def utc_day(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%d")


def next_utc_midnight(at: datetime | None = None) -> datetime:
    now = at or datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def session_over(counts: Mapping[str, int], limit: int | None) -> str | None:
    """The stop reason for a session past `loop.budget.session_tokens`, or None."""
    if limit is None:  # (every batch of every session asks)
        return None
    used = tokens_of(counts)
    if used <= limit:
        return None
    return f"budget: {used} tokens > {limit} (loop.budget.session_tokens)"


def file_tokens(path: Path) -> int:
    """A session file's tokens: its outcome's totals, else its `token_usage` records summed."""
    outcome = outcome_of(path)
    if isinstance(outcome, Outcome) and isinstance(outcome.tokens, dict) and outcome.tokens:
        return tokens_of({k: v for k, v in outcome.tokens.items() if isinstance(v, int)})
    total = 0
    for record in read_session_records(path):
        if isinstance(record, TokenUsage):
            total += tokens_of(record.counts())
    return total


class DailyBudget:
    """Tokens used on the current UTC day. Owned by the Supervisor (one loop, no locks)."""

    def __init__(self) -> None:
        self.day = utc_day()
        self.used = 0

    def _roll(self) -> None:
        today = utc_day()
        if today != self.day:
            self.day, self.used = today, 0

    def add(self, tokens: int) -> None:
        self._roll()
        self.used += tokens

    def used_today(self) -> int:
        self._roll()
        return self.used

    def spent(self, limit: int | None) -> bool:
        return limit is not None and self.used_today() >= limit

    @staticmethod
    def rebuild(sessions_dir: Path) -> tuple[str, int]:
        """(day, tokens) of the session files last written today (UTC); run off the loop."""
        day = utc_day()
        start = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()  # not strptime: no _strptime, calendar
        total = 0
        if not sessions_dir.is_dir():
            return day, 0
        for issue_dir in sessions_dir.iterdir():
            if not issue_dir.is_dir():
                continue
            for path in issue_dir.glob("*.jsonl"):
                try:
                    if path.stat().st_mtime < start:
                        continue
                except OSError:
                    continue
                total += file_tokens(path)
        return day, total

    def adopt(self, day: str, used: int) -> None:
        """What `rebuild` found, plus anything credited meanwhile on the same day."""
        if day == utc_day():
            self._roll()
            self.used += used
