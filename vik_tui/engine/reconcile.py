"""A good pull applied to the runs: which finished stages may run again, which pending
retries are dropped, and which running stages are stopped (after `loop.reconcile_grace_sec`)
or only reported because their issue left the stage's state.

It exists so intake's consequences for the runs are one job, read in one place; the
Supervisor calls it after each good pull and does the stopping itself (`stop`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.intake import Issue
from vik_tui.engine.stages.facts import StopCause
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import RunStatus


class Reconciler:
    """One per supervisor; remembers which moves it already reported."""

    def __init__(
        self,
        stop: Callable[[StageRun, StopCause, str], None],
        emit: Callable[[ee.EngineEvent], None],
        log: Callable[[ee.Level, str], None],
    ) -> None:
        self._stop, self._emit, self._log = stop, emit, log
        self._moved_reported: dict[tuple[str, str], tuple[StageRun, str]] = {}  # issue_moved said once

    def apply(
        self,
        runs: Iterable[StageRun],
        issues: Mapping[str, Issue],
        listed: set[str],
        workflow: Workflow,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        for run in runs:
            issue = issues.get(run.issue_id)
            present = run.issue_id in listed
            in_state = present and issue is not None and issue.state == run.config.when.state
            if in_state:
                if run.reconcile_handle:
                    run.reconcile_handle.cancel()
                    run.reconcile_handle = None
                    self._log(
                        "info", f"{run.issue_id}/{run.stage}: issue is back in `{run.config.when.state}`; not stopping"
                    )
                continue
            reason = f"issue moved to {issue.state}" if present and issue else "issue no longer listed"
            if run.status.terminal:
                # only a move out of the state lets it run again: an issue missing from one pull
                # (an empty or partial answer between two full ones) keeps its finished stages
                run.rerun_allowed = run.rerun_allowed or present
            elif run.status == RunStatus.RETRY_WAIT:
                run.clear_retry()
                run.status, run.reason = RunStatus.FAILED, f"{run.reason}; retry dropped: {reason}"
                run.rerun_allowed = True
                self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))
            elif run.active and not workflow.loop.reconcile:
                self._report_moved(run, issue.state if present and issue else None, reason)
            elif run.active and run.reconcile_handle is None and run.abort is None:
                grace = float(workflow.loop.reconcile_grace_sec)
                assert loop is not None
                run.reconcile_handle = loop.call_later(grace, self._reconcile_now, run, reason)
                self._emit(ee.ReconcilePending(issue=run.issue_id, stage=run.stage, reason=reason, grace_sec=grace))

    def _report_moved(self, run: StageRun, state: str | None, reason: str) -> None:
        """vik's rule (ADR 0003): a running stage is never stopped because the tracker changed;
        its agent is often the one that moved the issue. Said once per move, as information."""
        if self._moved_reported.get((run.issue_id, run.stage)) == (run, reason):
            return
        self._moved_reported[(run.issue_id, run.stage)] = (run, reason)
        self._emit(ee.IssueMoved(issue=run.issue_id, stage=run.stage, state=state, reason=reason))

    def _reconcile_now(self, run: StageRun, reason: str) -> None:
        run.reconcile_handle = None
        if run.active:
            self._stop(run, StopCause.RECONCILE, reason)
