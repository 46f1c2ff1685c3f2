"""History that survives restarts: the session files an earlier supervisor left are read back
into finished runs, so the screens show them and a restart re-dispatches as vik does."""

from __future__ import annotations

from vik_tui.agents.events import Outcome
from vik_tui.config.schema import Workflow
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.stages.facts import SessionFacts
from vik_tui.engine.stages.replay import list_sessions, outcome_of
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import RunStatus, SessionState


def adopt_sessions(layout: Layout, workflow: Workflow, runs: dict[tuple[str, str], StageRun]) -> int:
    """Add every session file of a stage still in the workflow to `runs` (created where
    missing); returns how many were adopted."""
    count = 0
    if not layout.sessions_dir.is_dir():
        return 0
    stage_names = list(workflow.issue.stages)
    for issue_dir in sorted(layout.sessions_dir.iterdir()):
        for path in list_sessions(layout.sessions_dir, issue_dir.name):
            parsed = Layout.parse_session_name(path)
            if parsed is None or parsed[0] not in stage_names:
                continue
            stage, session_uuid = parsed
            outcome = outcome_of(path) or Outcome(
                state=SessionState.FAILED, reason="no outcome recorded (supervisor stopped abruptly)"
            )
            snap = SessionFacts(issue_dir.name, stage, 0, session_uuid, str(path))
            snap.state = SessionState.parse(outcome.state)
            snap.reason = outcome.reason
            snap.exit_code = outcome.exit_code
            tokens = outcome.tokens if isinstance(outcome.tokens, dict) else {}
            snap.tokens.update({k: v for k, v in tokens.items() if isinstance(v, int)})
            snap.started_at, snap.ended_at = outcome.started_at, outcome.ended_at
            key = (issue_dir.name, stage)
            run = runs.get(key)
            if run is None:
                run = StageRun(issue_dir.name, stage, workflow.issue.stages[stage])
                run.rerun_allowed = True  # a restart re-dispatches, as vik does
                runs[key] = run
            run.sessions.append(snap)
            run.status, run.reason, run.attempt = RunStatus(snap.state), snap.reason, len(run.sessions)
            snap.attempt = len(run.sessions)
            count += 1
    return count
