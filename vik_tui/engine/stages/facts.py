"""The facts of one stage session and the words for how it was stopped: `SessionFacts`
(pid, tokens, tools in flight, last message, outcome), `StopCause`, `SessionLimits`, and the
outcome line written for a session whose agent never ran (or whose supervisor died).

It exists apart from `session.py` (the process that fills these facts in) because most of the
engine reads them (runs, views, history, recovery) and none of those needs the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from vik_tui.agents import events as ev
from vik_tui.engine.clock import now_iso
from vik_tui.engine.service.journal import append_lines, json_line
from vik_tui.engine.view import SESSION_FINISHED, SessionState, SessionView, Tokens


@dataclass
class SessionLimits:
    stage_timeout_sec: float = 3600
    stall_timeout_sec: float = 900
    cancel_grace_sec: float = 5


class StopCause(StrEnum):
    """Why a session was stopped from outside; each gives the session a (state, reason)."""

    CANCEL = "cancel"  # the user's `c`
    TIMEOUT = "timeout"  # loop.stage_timeout_sec
    STALL = "stall"  # loop.stall_timeout_sec
    SHUTDOWN = "shutdown"  # the supervisor stops
    RECONCILE = "reconcile"  # the issue left the stage's state (loop.reconcile)
    STORAGE = "storage"  # the session file cannot be written: failed (and retried), never a wedge
    BUDGET = "budget"  # loop.budget.session_tokens passed: failed, and not retried (it would spend again)
    READ = "read"  # vik-tui could not read the agent's output (out of memory, a bug): failed (and retried)

    @property
    def counts_as_cancelled(self) -> bool:
        """The session ends `cancelled`, not `failed`, and the stage is not retried."""
        return self in (StopCause.CANCEL, StopCause.SHUTDOWN, StopCause.RECONCILE)


@dataclass
class SessionFacts:
    """The engine's live record of one session, updated in place as events arrive (not a
    snapshot: the UI gets a frozen copy, `to_view()`, inside `Supervisor.snapshot()`)."""

    issue_id: str
    stage: str
    attempt: int
    session_uuid: str
    session_file: str
    state: SessionState = SessionState.STARTING
    agent_session_id: str | None = None
    pid: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    last_message: str | None = None
    tools_in_flight: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ev.TOKEN_KEYS, 0))
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    stop_cause: StopCause | None = None
    events: int = 0
    host: str | None = None  # the SSH host the agent runs on; None: this machine
    _view: SessionView | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in SESSION_FINISHED

    def to_view(self) -> SessionView:
        """A frozen copy. A finished session no longer changes, so its copy is made once: the
        cost of a snapshot then follows the live sessions, not the whole history."""
        view = self._view
        if view is not None and self.finished:
            return view
        view = SessionView(
            issue_id=self.issue_id,
            stage=self.stage,
            attempt=self.attempt,
            session_uuid=self.session_uuid,
            session_file=self.session_file,
            state=self.state,
            agent_session_id=self.agent_session_id,
            pid=self.pid,
            started_at=self.started_at,
            ended_at=self.ended_at,
            tokens=Tokens.of(self.tokens),
            reason=self.reason,
            exit_code=self.exit_code,
            signal=self.signal,
            host=self.host,
        )
        if self.finished:
            self._view = view
        return view


def write_outcome_only(facts: SessionFacts, state: SessionState, reason: str) -> None:
    """For a stage that failed before any agent started (hook, template), or whose supervisor
    died (`recovery`): the file still tells. A file cut mid-line gets a newline first."""
    path = Path(facts.session_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    facts.state, facts.reason = state, reason
    facts.ended_at = now_iso()
    facts.started_at = facts.started_at or facts.ended_at
    record = ev.Outcome(
        state=state.value,
        reason=reason,
        tokens=dict(facts.tokens),
        started_at=facts.started_at,
        ended_at=facts.ended_at,
        ts=facts.ended_at,
    ).to_dict()
    append_lines(path, json_line(record))  # whole lines only; raises OSError
