"""What the tracker listed last, and intake's status: one pull cycle (`intake.pull` runs the
command) turned into the engine's issue table and the events that say how it went.

It exists so the Supervisor sees intake as "a good pull arrived: apply it, then dispatch";
keeping the issues, the rejected records, the iteration count and the status shown in the
header is this room's job. It never touches a `StageRun` (`apply` does, in the Supervisor).
"""

from __future__ import annotations

from collections.abc import Callable

from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine import intake
from vik_tui.engine.intake import Issue, PullResult
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.view import IntakeStatus, IntakeView, RejectedView


class Listing:
    """One per supervisor: `issues` keeps every issue ever listed, `listed` the last good pull's order."""

    def __init__(self, emit: Callable[[ee.EngineEvent], None]) -> None:
        self._emit = emit
        self.issues: dict[str, Issue] = {}
        self.listed: list[str] = []
        self.rejected: tuple[RejectedView, ...] = ()
        self.iterations = 0
        self.status = IntakeStatus.STARTING
        self.error: str | None = None
        self.next_poll_at: float | None = None  # event-loop time
        self.pulled = False  # a good pull happened: the listed issues are known
        self.failures = 0  # pulls failed in a row (a good pull ends the streak)

    async def cycle(self, workflow: Workflow, layout: Layout, apply: Callable[[PullResult], None]) -> bool:
        """One pull; for a good one, the table is replaced and `apply` called before it is
        announced. False when the pull failed (said as `intake_failed`)."""
        self.status = IntakeStatus.POLLING
        self._emit(ee.IntakePolling())
        result = await intake.pull(workflow, layout)
        self.iterations += 1
        if not result.ok:
            self.error = result.error
            self.status = IntakeStatus.ERROR
            self.failures += 1
            self._emit(
                ee.IntakeFailed(
                    error=result.error or "",
                    exit_code=result.exit_code,
                    stderr=result.stderr_tail[-1000:],
                    iteration=self.iterations,
                    failures=self.failures,
                    attention=self.failures == workflow.notify.intake_failures,
                )
            )
            return False
        self.error = None
        self.failures = 0
        self.pulled = True
        self.listed = [i.id for i in result.issues]
        self.issues.update((issue.id, issue) for issue in result.issues)
        self.rejected = tuple(RejectedView(index=r.index, id=r.issue_id, reason=r.reason) for r in result.rejected)
        apply(result)
        self._emit(ee.Intake(issues=len(result.issues), rejected=len(result.rejected), iteration=self.iterations))
        for item in result.rejected:
            self._emit(ee.IssueRejected(id=item.issue_id, index=item.index, reason=item.reason))
        return True

    def done(self) -> None:
        """No more polls (max_iterations reached, or finish())."""
        self.status = IntakeStatus.DONE
        self.next_poll_at = None

    def view(self, max_iterations: int | None, paused: bool, now: float) -> IntakeView:
        return IntakeView(
            status=self.status,
            error=self.error,
            iterations=self.iterations,
            max_iterations=max_iterations,
            paused=paused,
            next_poll_in=None if self.next_poll_at is None else max(0.0, self.next_poll_at - now),
        )
