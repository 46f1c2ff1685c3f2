"""Scheduling state of one (issue, stage): its attempts, sessions and retry schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vik_tui.config.schema import StageConfig
from vik_tui.engine import engine_events as ee
from vik_tui.engine.clock import iso_in
from vik_tui.engine.stages.facts import SessionFacts, StopCause
from vik_tui.engine.stages.session import StageSession
from vik_tui.engine.view import RunStatus, RunView


def backoff_delay(attempt: int, backoff_sec: float, max_backoff_sec: float) -> float:
    """Delay before retrying after failed attempt number `attempt` (1-based)."""
    return float(min(backoff_sec * (2 ** max(attempt - 1, 0)), max_backoff_sec))


def stages_of_another_state(runs: Iterable[StageRun], issue_id: str, state: str) -> list[str]:
    """The issue's stages still running (an `after_run` included) for a state other than
    `state`: a stage for `state` waits for them, so two states' stages never share the issue's
    checkout (an agent often moves its issue as its last act and goes on talking, and its
    `after_run` commits the tree). Sibling stages of one state still run together, as in vik."""
    return sorted(r.stage for r in runs if r.issue_id == issue_id and r.active and r.config.when.state != state)


def waiting_text(stages: list[str]) -> str:
    """What the view says while a stage waits for `stages` (see `stages_of_another_state`)."""
    return f"waiting for {' and '.join(stages)} to finish"


@dataclass
class StageRun:
    """Owned by the Supervisor; nothing else mutates it."""

    issue_id: str
    stage: str
    config: StageConfig
    status: RunStatus = RunStatus.RESERVED
    attempt: int = 1
    sessions: list[SessionFacts] = field(default_factory=list)
    session: StageSession | None = None
    task: asyncio.Task[Any] | None = None
    reason: str | None = None
    rerun_allowed: bool = False
    gave_up: bool = False
    retry_due: float | None = None  # event-loop time
    retry_due_at: str | None = None  # wall clock, for display
    retry_due_wall: float | None = None  # epoch seconds: what service/retries.jsonl keeps across restarts
    retry_not_before: str | None = None  # why the retry waits longer than its backoff (a rate limit)
    retry_handle: asyncio.TimerHandle | None = None
    reconcile_handle: asyncio.TimerHandle | None = None
    abort: tuple[StopCause, str] | None = None  # (cause, reason) requested before the agent started
    host: str | None = None  # the SSH host this attempt runs on; None: this machine

    @property
    def active(self) -> bool:
        return self.status.active

    # the retry schedule: bookkeeping the Supervisor asks for once it has decided
    def wait_retry(self, loop: asyncio.AbstractEventLoop, delay: float, on_due: Callable[[StageRun], None]) -> None:
        """`retry_wait` for `delay` seconds, then `on_due(self)` on `loop`."""
        self.status = RunStatus.RETRY_WAIT
        self.retry_due = loop.time() + delay
        self.retry_due_at = iso_in(delay)
        self.retry_due_wall = time.time() + delay
        self.retry_handle = loop.call_later(delay, on_due, self)

    def drop_retry(self, reason: str) -> None:
        """A pending retry that must not run any more: the run stays failed, and says why."""
        self.clear_retry()
        self.status = RunStatus.FAILED
        self.reason = f"{self.reason}; retry dropped: {reason}" if self.reason else f"retry dropped: {reason}"

    def clear_retry(self) -> None:
        if self.retry_handle:
            self.retry_handle.cancel()
        self.retry_handle, self.retry_due, self.retry_due_at, self.retry_due_wall = None, None, None, None

    def to_view(self, now: float) -> RunView:
        """A frozen copy for the UI; `now` is event-loop time (for the retry countdown)."""
        return RunView(
            issue_id=self.issue_id,
            stage=self.stage,
            status=self.status,
            attempt=self.attempt,
            reason=self.reason,
            gave_up=self.gave_up,
            retry_due_at=self.retry_due_at,
            retry_in=None if self.retry_due is None else max(0.0, self.retry_due - now),
            history=tuple(s.to_view() for s in self.sessions),
            host=self.host,
            rerun_allowed=self.rerun_allowed,
        )

    def finished_event(self, snap: SessionFacts | None, level: ee.Level = "info") -> ee.StageFinished:
        """`stage_finished` for this run's last attempt (`snap` None: it never had a session)."""
        return ee.StageFinished(
            level=level,
            issue=self.issue_id,
            stage=self.stage,
            attempt=self.attempt,
            state=self.status,
            reason=self.reason,
            exit_code=snap.exit_code if snap else None,
            signal=snap.signal if snap else None,
            tokens=dict(snap.tokens) if snap else {},
            session_file=snap.session_file if snap else None,
        )


def started_event(snap: SessionFacts) -> ee.StageStarted:
    """`stage_started` once an attempt's agent process exists."""
    return ee.StageStarted(
        issue=snap.issue_id,
        stage=snap.stage,
        attempt=snap.attempt,
        pid=snap.pid,
        session_file=snap.session_file,
        host=snap.host,
    )
