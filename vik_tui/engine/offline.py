"""The view a supervisor would have, built without one: from the workflow, the files an
earlier supervisor left (session files, pending retries, rate-limit holds) and one pull of the tracker.
`vik-tui explain` uses it when no supervisor of the workflow is running, so its answer is
`explain()`'s own, over the same kind of view."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vik_tui.config.schema import Workflow
from vik_tui.engine import views
from vik_tui.engine.budget import DailyBudget
from vik_tui.engine.clock import iso_in
from vik_tui.engine.history import adopt_sessions
from vik_tui.engine.intake import PullResult, run_pull
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.service.rate_holds import HoldStore
from vik_tui.engine.service.retries import RetryStore
from vik_tui.engine.stages import templates
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import (
    BudgetView,
    EngineView,
    HoldKind,
    HoldView,
    IntakeStatus,
    IntakeView,
    RejectedView,
    RunStatus,
    StageSpec,
)


async def offline_view(workflow: Workflow, workflow_path: Path) -> tuple[EngineView, str | None]:
    """(the view, the pull's error if it failed). Reads files off the loop; runs the pull once."""
    layout = Layout.for_workflow(workflow, workflow_path)
    runs: dict[tuple[str, str], StageRun] = {}
    await asyncio.to_thread(adopt_sessions, layout, workflow, runs)
    pending, _warnings = RetryStore(layout.service_dir).load()
    wall = time.time()
    for item in pending:
        config = workflow.issue.stages.get(item.stage)
        if config is None:
            continue
        run = runs.get((item.issue, item.stage)) or StageRun(item.issue, item.stage, config)
        run.status, run.attempt, run.reason = RunStatus.RETRY_WAIT, item.attempt, item.error
        delay = max(0.0, item.due_at - wall)
        run.retry_due, run.retry_due_at = delay, iso_in(delay)  # `now` below is 0: due_in is the delay
        runs[(item.issue, item.stage)] = run
    try:
        command = await templates.render_async(
            workflow.issues.pull.command, templates.pull_context(workflow_path, layout.root), "issues.pull.command"
        )
    except templates.TemplateError as exc:
        result = PullResult(error=f"cannot render the pull command: {exc}")
    else:
        result = await run_pull(command, layout.workflow_dir, float(workflow.loop.pull_timeout_sec))
    issues = {issue.id: issue for issue in result.issues}
    listed = [issue.id for issue in result.issues]
    for run in runs.values():
        issue = issues.get(run.issue_id)
        if run.status.terminal and (issue is None or issue.state != run.config.when.state):
            run.rerun_allowed = True
    by_issue = views.runs_by_issue([r for r in runs.values() if r.issue_id in issues], list(workflow.issue.stages))
    _day, used = await asyncio.to_thread(DailyBudget.rebuild, layout.sessions_dir)
    limit = workflow.loop.budget.daily_tokens
    holds: tuple[HoldView, ...] = ()
    if limit is not None and used >= limit:
        holds = (HoldView(HoldKind.BUDGET, "daily", None, None, f"daily token budget spent: {used} of {limit} tokens"),)
    kept, _backoff, _said = HoldStore(layout.service_dir).load()  # what the next start waits for
    wall = time.time()
    holds += tuple(
        HoldView(HoldKind.RATE_LIMIT, hold.runtime, hold.until_iso, hold.until - wall, hold.reason)
        for hold in sorted(kept, key=lambda h: h.runtime)
        if hold.until > wall
    )
    view = EngineView(
        workflow=str(workflow_path),
        name=workflow_path.parent.name + "/" + workflow_path.name,
        intake=IntakeView(
            status=IntakeStatus.IDLE if result.ok else IntakeStatus.ERROR, error=result.error, iterations=1
        ),
        stages=tuple(workflow.issue.stages),
        stage_states=frozenset(stage.when.state for stage in workflow.issue.stages.values()),
        running=0,
        max_issue_concurrency=workflow.loop.max_issue_concurrency,
        issues=views.IssueViews().build(listed, issues, by_issue, {}, 0.0),
        rejected=tuple(RejectedView(index=r.index, id=r.issue_id, reason=r.reason) for r in result.rejected),
        holds=holds,
        budget=BudgetView(used, limit, workflow.loop.budget.session_tokens),
        stage_specs=tuple(
            StageSpec(
                name, stage.when.state, workflow.agents[stage.agent].runtime if stage.agent in workflow.agents else "?"
            )
            for name, stage in workflow.issue.stages.items()
        ),
    )
    return view, result.error
