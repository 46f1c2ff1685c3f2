"""Why is issue X (not) running? A pure function of the engine's view.

github-symphony's `repo explain` answers this; before, an idle issue just sat in the list. The
answer is computed from an `EngineView` alone, so the in-process UI, an attached UI (which
holds the same view, read over HTTP), the API's per-issue body and `vik-tui explain` all say
the same sentence. The reasons, most decisive first: the supervisor stops or drains; the
issue was rejected or is not listed; a stage runs; a retry waits; a stage gave up or failed;
no stage matches the state; a stage completed while the tracker still shows that state; a
stage waits for the stages of the issue's previous state; the daily budget is spent; the
runtime is rate-limited; no SSH host has room; no slot is free; intake is paused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vik_tui.engine.view import (
    EngineView,
    ExplainCode,
    Explanation,
    HoldKind,
    IntakeStatus,
    IssueView,
    RunStatus,
    RunView,
    StageSpec,
)


def explain(view: EngineView, issue_id: str) -> Explanation:
    """The one reason that matters most for `issue_id` now."""
    issue = view.find_issue(issue_id)
    if issue is None:
        for rejected in view.rejected:
            if rejected.id == issue_id:
                return _say(issue_id, ExplainCode.REJECTED, f"rejected by intake: {rejected.reason}")
        if view.intake.iterations == 0 or view.intake.status == IntakeStatus.STARTING:
            return _say(issue_id, ExplainCode.NOT_PULLED_YET, "the tracker has not been pulled yet")
        return _say(issue_id, ExplainCode.UNKNOWN, f"no issue {issue_id!r} in the tracker's last pull")
    for run in issue.runs:
        if run.status.active:
            return _running(issue, run)
    if view.stopping:
        return _say(issue.id, ExplainCode.STOPPING, "the supervisor is stopping: nothing new starts")
    for run in issue.runs:
        if run.status == RunStatus.RETRY_WAIT:
            return _retry(view, issue, run)
    matching = [spec for spec in view.stage_specs if spec.state == issue.state]
    if not issue.listed:
        return _say(issue.id, ExplainCode.NOT_LISTED, "no longer in the tracker's list (shown for its history)")
    if not matching:
        return _no_stage(view, issue)
    waiting = [spec for spec in matching if _could_start(issue.run_of(spec.name))]
    for spec in matching:
        failed = issue.run_of(spec.name)
        if failed is not None and failed.status == RunStatus.FAILED and failed.gave_up and spec not in waiting:
            return _gave_up(issue, failed)
    for spec in matching:
        failed = issue.run_of(spec.name)
        if failed is not None and failed.status == RunStatus.FAILED and spec not in waiting:
            return _say(
                issue.id,
                ExplainCode.FAILED,
                f"{spec.name} failed: {failed.reason or 'no reason recorded'}; not retried (`r` retries it)",
                spec.name,
            )
    if not waiting:
        done = matching[0]
        last = issue.run_of(done.name)
        if last is not None and last.status == RunStatus.CANCELLED:
            return _say(
                issue.id,
                ExplainCode.CANCELLED,
                f"{done.name} was cancelled ({last.reason}); it runs again once the issue leaves `{issue.state}`"
                " and comes back, or on `r`",
                done.name,
            )
        return _say(
            issue.id,
            ExplainCode.COMPLETED,
            f"{done.name} completed; waiting for the tracker to move (still `{issue.state}`)",
            done.name,
        )
    spec = waiting[0]
    blocked = _waiting_for_stage(issue)
    if blocked is not None:
        return _say(issue.id, ExplainCode.WAITING_FOR_STAGE, blocked, spec.name)
    return _gated(view, issue, spec)


def _gated(view: EngineView, issue: IssueView, spec: StageSpec) -> Explanation:
    """A stage that could start: what holds it back, if anything."""
    if view.draining:
        return _say(
            issue.id,
            ExplainCode.DRAINING,
            f"draining: no new stage starts; the supervisor exits once {view.active_run_count} running end",
            spec.name,
        )
    for hold in view.holds:
        if hold.kind == HoldKind.BUDGET:
            return _say(
                issue.id,
                ExplainCode.BUDGET_SPENT,
                f"{hold.reason}; {spec.name} starts at {_clock(hold.until)} UTC or when a reload raises"
                " loop.budget.daily_tokens",
                spec.name,
            )
    for hold in view.holds:
        if hold.kind == HoldKind.RATE_LIMIT and hold.scope == spec.runtime:
            return _say(
                issue.id,
                ExplainCode.RATE_LIMITED,
                f"{spec.runtime} is rate-limited until {_clock(hold.until)} UTC ({hold.reason}); {spec.name} waits",
                spec.name,
            )
    if view.hosts and not any(_host_has_room(h.healthy, h.running, h.cap) for h in view.hosts):
        parts = [
            f"{h.name} {'down: ' + (h.error or 'unreachable') if h.healthy is False else f'{h.running}/{h.cap} busy'}"
            for h in view.hosts
        ]
        return _say(
            issue.id, ExplainCode.HOST_UNAVAILABLE, f"every SSH host is full or down ({'; '.join(parts)})", spec.name
        )
    if view.running >= view.max_issue_concurrency > 0:
        return _say(
            issue.id,
            ExplainCode.WAITING_FOR_SLOT,
            f"waiting for a slot: max_issue_concurrency {view.running} of {view.max_issue_concurrency} running",
            spec.name,
        )
    if view.intake.paused:
        return _say(issue.id, ExplainCode.PAUSED, f"intake is paused; {spec.name} starts after resume", spec.name)
    return _say(issue.id, ExplainCode.READY, f"{spec.name} starts at the next dispatch", spec.name)


def _running(issue: IssueView, run: RunView) -> Explanation:
    session = run.session
    pid = f", pid {session.pid}" if session is not None and session.pid else ""
    where = f" on {run.host}" if run.host else ""
    return _say(
        issue.id, ExplainCode.RUNNING, f"{run.stage} is {run.status} (attempt {run.attempt}{pid}){where}", run.stage
    )


def _retry(view: EngineView, issue: IssueView, run: RunView) -> Explanation:
    due = "now (waiting for a slot)" if not run.retry_in else f"in {_seconds(run.retry_in)}"
    at = f" at {_clock(run.retry_due_at)} UTC" if run.retry_due_at and run.retry_in else ""
    spec = next((s for s in view.stage_specs if s.name == run.stage), None)
    limited = next(
        (h for h in view.holds if spec is not None and h.kind == HoldKind.RATE_LIMIT and h.scope == spec.runtime),
        None,
    )
    after = f", after the {limited.scope} rate limit resets" if limited is not None else ""
    why = f"; it failed: {run.reason}" if run.reason else ""
    held = " (draining: it will not start before a resume or a restart)" if view.draining else ""
    return _say(
        issue.id,
        ExplainCode.RETRY_WAIT,
        f"{run.stage} retry #{run.attempt + 1} due {due}{at}{after}{held}{why}",
        run.stage,
    )


def _gave_up(issue: IssueView, run: RunView) -> Explanation:
    return _say(
        issue.id,
        ExplainCode.GAVE_UP,
        f"{run.stage} gave up after {run.attempt} attempt{'s' if run.attempt != 1 else ''}: {run.reason};"
        f" it runs again once the issue leaves `{issue.state}` and comes back, or on `r`",
        run.stage,
    )


def _no_stage(view: EngineView, issue: IssueView) -> Explanation:
    states = sorted({spec.state for spec in view.stage_specs})
    return _say(
        issue.id,
        ExplainCode.NO_STAGE,
        f"no stage runs for state `{issue.state}` (stages run for: {', '.join(states) or 'none'})",
    )


def _could_start(run: RunView | None) -> bool:
    """Dispatch would start this stage (no run yet, or a finished one the issue left and re-entered)."""
    return run is None or (run.status.terminal and run.rerun_allowed)


def _waiting_for_stage(issue: IssueView) -> str | None:
    """One state at a time per workspace: the view says which stage of the issue's previous
    state must end first ("waiting for plan to finish")."""
    return issue.waiting or None


def _host_has_room(healthy: bool | None, running: int, cap: int | None) -> bool:
    return healthy is not False and (cap is None or running < cap)


def _say(issue_id: str, code: ExplainCode, words: str, stage: str | None = None) -> Explanation:
    return Explanation(issue_id, code, words, stage)


def _seconds(value: float) -> str:
    seconds = round(value)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _clock(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return iso
    today = datetime.now(UTC).date()
    return moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")
