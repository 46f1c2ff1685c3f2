"""Symphony's bodies (SPEC §13.7) built from the engine's typed view, plus our additive keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from vik_tui.api import wire
from vik_tui.api.routes import url_for
from vik_tui.api.stream import EventHub
from vik_tui.engine.clock import now_iso
from vik_tui.engine.view import EngineView, Explanation, IssueView, RunStatus, RunView, Tokens

WorkspaceOf = Callable[[IssueView], str | None]


def _counts(tokens: Tokens) -> wire.TokenCounts:
    return wire.TokenCounts(tokens.input, tokens.output, tokens.total, tokens.cache_read)


def _seconds(started: str | None, ended: str | None, now: datetime) -> float:
    if not started:
        return 0.0
    try:
        start = datetime.fromisoformat(started)
        end = datetime.fromisoformat(ended) if ended else now
    except ValueError:
        return 0.0
    return max(0.0, (end - start).total_seconds())


def running_entry(issue: IssueView, run: RunView, hub: EventHub, workspace: str | None) -> wire.RunningEntry:
    session = run.session
    last = hub.last_agent_event.get((issue.id, run.stage))
    return wire.RunningEntry(
        issue_id=issue.id,
        issue_identifier=issue.id,
        issue_url=_url(issue),
        state=issue.state,
        session_id=session.agent_session_id if session else None,
        turn_count=len(run.history),
        last_event=last[0] if last else None,
        last_message=last[1] if last else "",
        started_at=session.started_at if session else None,
        last_event_at=last[2] if last else None,
        tokens=_counts(session.tokens if session else Tokens()),
        stage=run.stage,
        attempt=run.attempt,
        status=str(run.status),
        pid=session.pid if session else None,
        session_uuid=session.session_uuid if session else None,
        session_file=session.session_file if session else None,
        worker_host=run.host or issue.host,
        workspace_path=workspace,
    )


def retrying_entry(issue: IssueView, run: RunView, workspace: str | None) -> wire.RetryingEntry:
    return wire.RetryingEntry(
        issue_id=issue.id,
        issue_identifier=issue.id,
        issue_url=_url(issue),
        attempt=run.attempt,
        due_at=run.retry_due_at,
        error=run.reason,
        stage=run.stage,
        due_in=run.retry_in or 0.0,
        worker_host=run.host or issue.host,
        workspace_path=workspace,
    )


def _url(issue: IssueView) -> str | None:
    value = issue.extra.get("url") if issue.extra else None
    return value if isinstance(value, str) else None


def state_body(view: EngineView, hub: EventHub, workspace_of: WorkspaceOf, pid: int) -> wire.StateBody:
    running: list[wire.RunningEntry] = []
    retrying: list[wire.RetryingEntry] = []
    seconds = 0.0
    now = datetime.now().astimezone()
    for issue in view.issues:
        if not issue.runs:
            continue
        for session in issue.sessions:
            seconds += _seconds(session.started_at, session.ended_at, now)
        for run in issue.runs:
            if run.status.active:
                running.append(running_entry(issue, run, hub, workspace_of(issue)))
            elif run.status == RunStatus.RETRY_WAIT:
                retrying.append(retrying_entry(issue, run, workspace_of(issue)))
    tokens = view.tokens
    rate_limits = {scope: wire.adapter(type(rl)).dump_python(rl) for scope, rl in view.rate_limits.items()}
    return wire.StateBody(
        generated_at=now_iso(),
        counts=wire.Counts(len(running), len(retrying), len(view.issues), view.attention_count),
        running=tuple(running),
        retrying=tuple(retrying),
        codex_totals=wire.CodexTotals(tokens.input, tokens.output, tokens.total, round(seconds, 1), tokens.cache_read),
        rate_limits=rate_limits or None,
        workflow=view.workflow,
        pid=pid,
        paused=view.intake.paused,
        intake=str(view.intake.status),
        max_issue_concurrency=view.max_issue_concurrency,
        last_event_id=hub.last_id,
    )


def _status(issue: IssueView) -> str:
    statuses = {run.status for run in issue.runs}
    if any(status.active for status in statuses):
        return "running"
    if RunStatus.RETRY_WAIT in statuses:
        return "retrying"
    if RunStatus.FAILED in statuses:
        return "failed"
    if statuses and statuses <= {RunStatus.COMPLETED}:
        return "completed"
    if RunStatus.CANCELLED in statuses:
        return "cancelled"
    return "idle"


def issue_body(
    issue: IssueView, hub: EventHub, workspace: str | None, local: str | None, explanation: Explanation | None = None
) -> wire.IssueBody:
    """`workspace`: where it is on its host (Symphony's `workspace.path`); `local`: its path on
    the supervisor's machine (`Engine.workspace_path`, our `workspace_path`)."""
    running = tuple(running_entry(issue, run, hub, local) for run in issue.runs if run.status.active)
    retry = tuple(retrying_entry(issue, run, local) for run in issue.runs if run.status == RunStatus.RETRY_WAIT)
    waiting = [run.attempt for run in issue.runs if run.status == RunStatus.RETRY_WAIT]
    failed = [s for s in issue.sessions if s.state == "failed" and s.reason]
    logs = [
        {
            "label": f"{s.stage} #{s.attempt}",
            "path": s.session_file,
            "url": url_for("records", issue_id=issue.id, session_file_name=s.session_file.rsplit("/", 1)[-1]),
        }
        for s in issue.sessions
    ]
    recent = tuple(
        wire.RecentEvent(at=entry.event.ts, event=entry.event.name, message=entry.describe())
        for entry in hub.recent(issue.id, 20)
    )
    view: Any = wire.adapter(IssueView).dump_python(issue, mode="json")
    return wire.IssueBody(
        issue_identifier=issue.id,
        issue_id=issue.id,
        status=_status(issue),
        workspace={"path": workspace, "host": issue.host},
        attempts={
            "restart_count": sum(max(0, len(run.history) - 1) for run in issue.runs),
            "current_retry_attempt": max(waiting, default=0),
        },
        running=running,
        retry=retry,
        logs={"codex_session_logs": logs},
        recent_events=recent,
        last_error=failed[-1].reason if failed else None,
        tracked=dict(issue.extra),
        title=issue.title,
        state=issue.state,
        listed=issue.listed,
        worker_host=issue.host,
        workspace_path=local,
        view=view,
        explain=explanation,
    )
