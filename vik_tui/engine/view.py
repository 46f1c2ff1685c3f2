"""The typed contract between the engine and whatever shows it: statuses and the snapshot views.

`Supervisor.snapshot()` returns an `EngineView`: frozen, slotted dataclasses that the UI (and
tests) read instead of nested dicts. Values the screen needs again and again (an issue's
sessions in order, its token total, the engine's active run count) are computed once when a
view is built, so reading them every frame costs nothing.

A leaf module: it imports nothing from the engine, so the engine can build views and the UI
can read them without either importing the other's internals.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

# the detail of the `error` record a replay gives a line of a session file that cannot be read
UNREADABLE_RECORD = "unreadable record in session file: "


@dataclass(frozen=True, slots=True)
class Terminal:
    """A command to run attached to a terminal (a shell, a taken-over agent), the local directory
    to start it in, and what it is, for messages (`ENG-12/plan #2`)."""

    argv: tuple[str, ...]
    cwd: Path
    what: str

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True)
class Refused:
    """The engine will not do what was asked (no workspace yet, an unsafe issue id, a session
    that cannot be taken over); `reason` says why, in words for the user."""

    reason: str


class RunStatus(StrEnum):
    """Where one (issue, stage) is in its life. A StrEnum: it equals (and serialises as) its string."""

    RESERVED = "reserved"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRY_WAIT = "retry_wait"

    @property
    def active(self) -> bool:
        """Holds a slot: counts against max_issue_concurrency, and quitting would stop it."""
        return self in ACTIVE

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def cancellable(self) -> bool:
        return self in CANCELLABLE


ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.RESERVED, RunStatus.PREPARING, RunStatus.RUNNING})
TERMINAL: frozenset[RunStatus] = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
CANCELLABLE: frozenset[RunStatus] = ACTIVE | {RunStatus.RETRY_WAIT}


class SessionState(StrEnum):
    """One agent session: starting until its process exists, then running, then one terminal state."""

    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def live(self) -> bool:
        return self in SESSION_LIVE

    @property
    def finished(self) -> bool:
        return self in SESSION_FINISHED

    @classmethod
    def parse(cls, value: object, default: SessionState | None = None) -> SessionState:
        """A state read from a file (an outcome record): unknown values become `default` (failed)."""
        try:
            return cls(str(value))
        except ValueError:
            return default or cls.FAILED


SESSION_LIVE: frozenset[SessionState] = frozenset({SessionState.STARTING, SessionState.RUNNING})
SESSION_FINISHED: frozenset[SessionState] = frozenset(
    {SessionState.COMPLETED, SessionState.FAILED, SessionState.CANCELLED}
)


class IntakeStatus(StrEnum):
    """What the tracker poll loop is doing."""

    STARTING = "starting"
    POLLING = "polling"
    IDLE = "idle"
    PAUSED = "paused"
    ERROR = "error"
    DONE = "done"
    STOPPING = "stopping"


# -- views -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts of a session (or a sum of sessions)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0

    @property
    def total(self) -> int:
        """In + out: what the issue list shows."""
        return self.input + self.output

    @classmethod
    def of(cls, counts: Mapping[str, Any]) -> Tokens:
        """From the engine's mutable counter dict; missing or odd values count as 0."""

        def num(key: str) -> int:
            value = counts.get(key, 0)
            return value if isinstance(value, int) else 0

        return cls(num("input"), num("output"), num("cache_read"))

    @classmethod
    def sum(cls, parts: Iterable[Tokens]) -> Tokens:
        i = o = c = 0
        for part in parts:
            i, o, c = i + part.input, o + part.output, c + part.cache_read
        return cls(i, o, c)


@dataclass(frozen=True, slots=True)
class RateLimitView:
    """The latest rate-limit observation of one scope."""

    scope: str
    used_percent: float | None = None
    remaining: int | None = None
    limit: int | None = None
    resets_at: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """One agent session (one attempt of one stage)."""

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
    tokens: Tokens = Tokens()
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    host: str | None = None  # the SSH host it ran on; None: this machine


@dataclass(frozen=True, slots=True)
class RunView:
    """One (issue, stage): its status, retry schedule and every attempt's session, oldest first."""

    issue_id: str
    stage: str
    status: RunStatus
    attempt: int = 1
    reason: str | None = None
    gave_up: bool = False
    retry_due_at: str | None = None  # wall clock, for display
    retry_in: float | None = None  # seconds until the retry, while status is retry_wait
    history: tuple[SessionView, ...] = ()
    host: str | None = None  # the SSH host of the current attempt; None: this machine

    @property
    def session(self) -> SessionView | None:
        """The current (newest) attempt's session."""
        return self.history[-1] if self.history else None


@dataclass(frozen=True, slots=True)
class IssueView:
    """One tracker issue and its stage runs (in the workflow's stage order)."""

    id: str
    title: str
    state: str
    description: str = ""
    listed: bool = True  # false: no longer in the tracker's list, shown for its history
    extra: Mapping[str, Any] = field(default_factory=dict)
    runs: tuple[RunView, ...] = ()
    host: str | None = None  # the SSH host the issue is pinned to (its workspace lives there)
    # "waiting for plan to finish": its new state's stages wait for the old state's to end
    waiting: str | None = None
    # derived once in __post_init__
    sessions: tuple[SessionView, ...] = field(init=False, repr=False, compare=False)
    tokens_total: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.runs:  # most issues of a big tracker never ran: nothing to derive
            object.__setattr__(self, "sessions", ())
            object.__setattr__(self, "tokens_total", 0)
            return
        found = {s.session_uuid: s for run in self.runs for s in run.history}
        sessions = tuple(sorted(found.values(), key=lambda s: s.session_uuid))  # uuid7: oldest first
        object.__setattr__(self, "sessions", sessions)
        object.__setattr__(self, "tokens_total", sum(s.tokens.total for s in sessions))

    @property
    def needs_attention(self) -> bool:
        """A stage failed and no retry is pending (given up, dropped, or not retryable)."""
        return any(run.status == RunStatus.FAILED for run in self.runs)

    @property
    def latest_session(self) -> SessionView | None:
        return self.sessions[-1] if self.sessions else None

    @property
    def default_session(self) -> SessionView | None:
        """The pane to show first: the newest live session, else the newest one."""
        for session in reversed(self.sessions):
            if session.state.live:
                return session
        return self.latest_session

    @property
    def first_active_run(self) -> RunView | None:
        """The stage a command applies to when no pane says otherwise: the first cancellable
        one, else the last."""
        for run in self.runs:
            if run.status.cancellable:
                return run
        return self.runs[-1] if self.runs else None

    def run_of(self, stage: str) -> RunView | None:
        for run in self.runs:
            if run.stage == stage:
                return run
        return None

    def find_session(self, session_uuid: str | None) -> SessionView | None:
        if session_uuid is None:
            return None
        for session in self.sessions:
            if session.session_uuid == session_uuid:
                return session
        return None


@dataclass(frozen=True, slots=True)
class RejectedView:
    """A tracker record intake dropped (`index` is its position in the pull output)."""

    index: int
    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RetryView:
    issue_id: str
    stage: str
    attempt: int  # the attempt that failed
    due_at: str | None
    due_in: float
    error: str | None = None  # why that attempt failed


@dataclass(frozen=True, slots=True)
class IntakeView:
    status: IntakeStatus = IntakeStatus.STARTING
    error: str | None = None
    iterations: int = 0
    max_iterations: int | None = None
    paused: bool = False
    next_poll_in: float | None = None


@dataclass(frozen=True, slots=True)
class HostView:
    """One SSH worker host: its load against its cap and whether it can take work."""

    name: str
    running: int  # stage sessions (preparing or running) on it now
    cap: int | None  # worker.max_concurrent_agents_per_host; None: no per-host limit
    healthy: bool | None  # None: not checked yet
    error: str | None = None  # why it is unhealthy
    pinned: int = 0  # issues whose workspace lives there


@dataclass(frozen=True, slots=True)
class EngineView:
    """Everything the screen shows, at one moment."""

    workflow: str
    name: str  # "<dir>/<file>" of the workflow, for the header
    intake: IntakeView = IntakeView()
    stages: tuple[str, ...] = ()  # the configuration's stages, in file order
    running: int = 0  # distinct issues with an active stage
    max_issue_concurrency: int = 0
    tokens: Tokens = Tokens()
    rate_limits: Mapping[str, RateLimitView] = field(default_factory=dict)
    issues: tuple[IssueView, ...] = ()
    rejected: tuple[RejectedView, ...] = ()
    retries: tuple[RetryView, ...] = ()
    stage_states: frozenset[str] = frozenset()  # issue states some stage matches (`when.state`)
    hosts: tuple[HostView, ...] = ()  # SSH worker hosts; empty: every session runs on this machine
    # derived once in __post_init__
    active_run_count: int = field(init=False, repr=False, compare=False)
    attention_count: int = field(init=False, repr=False, compare=False)
    backlog_count: int = field(init=False, repr=False, compare=False)
    _by_id: Mapping[str, IssueView] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        active = attention = backlog = 0
        states = self.stage_states
        for issue in self.issues:
            if not issue.runs:
                backlog += issue.state not in states
                continue
            for run in issue.runs:
                active += run.status.active
            attention += issue.needs_attention
        object.__setattr__(self, "active_run_count", active)  # stage runs that quitting would stop
        object.__setattr__(self, "attention_count", attention + len(self.rejected))
        object.__setattr__(self, "backlog_count", backlog)
        object.__setattr__(self, "_by_id", {issue.id: issue for issue in self.issues})

    def in_backlog(self, issue: IssueView) -> bool:
        """No stage matches its state and it never ran: summarised, not listed row by row."""
        return not issue.runs and issue.state not in self.stage_states

    def find_issue(self, issue_id: str | None) -> IssueView | None:
        return None if issue_id is None else self._by_id.get(issue_id)
