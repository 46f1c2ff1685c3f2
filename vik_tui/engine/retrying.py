"""Retry scheduling, and the pending retries kept on disk (`service/retries.jsonl`).

It exists so the Supervisor says only "this failure is retried" and "the backoff is over:
run it or drop it": the backoff (stretched past a rate-limit hold), giving up after
`max_attempts`, writing the pending set each time it changes and bringing it back after a
restart live here, as bookkeeping on the runs the Supervisor hands over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.holds import Holds
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.retries import PendingRetry, RetryStore
from vik_tui.engine.stages.runs import StageRun, backoff_delay
from vik_tui.engine.view import RunStatus

Runs = dict[tuple[str, str], StageRun]


class Retries:
    """One per supervisor; `durable` is False for a supervisor without the lock (no files)."""

    def __init__(
        self,
        runs: Runs,
        store: RetryStore,
        durable: bool,
        holds: Holds,
        stopping: Callable[[], bool],
        emit: Callable[[ee.EngineEvent], None],
        log: Callable[[ee.Level, str], None],
    ) -> None:
        self._runs, self._store, self._durable, self._holds = runs, store, durable, holds
        self._stopping, self._emit, self._log = stopping, emit, log

    def schedule(
        self, run: StageRun, workflow: Workflow, loop: asyncio.AbstractEventLoop, on_due: Callable[[StageRun], None]
    ) -> None:
        """A failed attempt: wait the backoff (at least until its runtime's rate limit resets),
        or give up after `max_attempts`."""
        policy = workflow.loop.retry
        if self._stopping():
            return
        if run.attempt >= policy.max_attempts:
            run.gave_up = True
            self._emit(ee.RetryGivenUp(issue=run.issue_id, stage=run.stage, attempts=run.attempt, reason=run.reason))
            return
        delay = backoff_delay(run.attempt, float(policy.backoff_sec), float(policy.max_backoff_sec))
        run.retry_not_before = None
        hold = self._holds.rate_limits.active(self._holds.runtime(run.config))
        if hold is not None and hold.until - time.time() > delay:  # not burnt against the same wall
            delay = round(hold.until - time.time(), 1)
            run.retry_not_before = f"after the {hold.runtime} rate limit resets"
        run.wait_retry(loop, delay, on_due)
        self.persist()  # on disk before it is announced
        self._emit(
            ee.RetryScheduled(
                issue=run.issue_id, stage=run.stage, attempt=run.attempt + 1, delay_sec=delay, due_at=run.retry_due_at
            )
        )

    def drop(self, run: StageRun, reason: str) -> None:
        run.drop_retry(reason)
        self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))
        self.persist()

    def persist(self) -> None:
        """Write the pending retries, so a restart (or a kill -9) keeps their schedule. Not
        while stopping: a shutdown clears the timers, not the retries."""
        if self._stopping() or not self._durable:
            return
        wall = time.time()
        pending = [
            PendingRetry(
                r.issue_id,
                r.stage,
                r.attempt,
                r.retry_due_wall if r.retry_due_wall is not None else wall,
                r.reason,
                r.config.when.state,
                r.retry_not_before,
            )
            for r in self._runs.values()
            if r.status == RunStatus.RETRY_WAIT
        ]
        try:
            self._store.save(pending)
        except OSError as exc:
            self._log(
                "error",
                f"cannot write {self._store.path}: {describe_os_error(exc)}; pending retries would not"
                " survive a restart",
            )

    def restore(self, workflow: Workflow, loop: asyncio.AbstractEventLoop, on_due: Callable[[StageRun], None]) -> None:
        """Before the first dispatch: the retries an earlier supervisor left pending, with their
        due times and attempt numbers. One whose stage left the workflow (or now runs for
        another state) is dropped with a reason; one whose issue left is dropped by the first
        pull (`reconcile`)."""
        if not self._durable:
            return
        pending, warnings = self._store.load()
        for warning in warnings:
            self._log("warning", warning)
        wall = time.time()
        for item in pending:
            config = workflow.issue.stages.get(item.stage)
            reason = None
            if config is None:
                reason = f"stage {item.stage} is no longer in the workflow"
            elif item.state is not None and item.state != config.when.state:
                reason = f"stage {item.stage} now runs for `{config.when.state}`, not `{item.state}`"
            if reason is not None or config is None:
                self._emit(ee.RetryDropped(level="warning", issue=item.issue, stage=item.stage, reason=reason or ""))
                continue
            run = StageRun(item.issue, item.stage, config, attempt=item.attempt, reason=item.error)
            earlier = self._runs.get((item.issue, item.stage))
            if earlier is not None:
                run.sessions = earlier.sessions
            delay = max(0.0, item.due_at - wall)
            run.wait_retry(loop, delay, on_due)
            run.retry_due_wall = item.due_at
            run.retry_not_before = item.not_before
            self._runs[(item.issue, item.stage)] = run
            self._log(
                "info",
                f"{item.issue}/{item.stage}: retry #{item.attempt + 1} kept from before the restart,"
                f" due in {delay:.0f}s ({run.retry_due_at})",
            )
        self.persist()
