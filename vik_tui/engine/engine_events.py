"""Engine events: one small frozen dataclass per kind, published by `Supervisor.emit`.

Each event knows its wire form (`to_json()`: the object `run --headless --json` prints and the
daily log keeps, documented in docs/command-line.md "Headless events": `event`, `ts`, `level`, then the
event's fields in declaration order) and its one human sentence (`describe()`, used by the
headless text printer and the UI's log pane alike). Consumers `match` on the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, Literal

from vik_tui.agents.events import AgentEvent
from vik_tui.config.diagnostics import Diagnostic
from vik_tui.engine.clock import now_iso
from vik_tui.engine.view import RunStatus

Level = Literal["debug", "info", "warning", "error"]

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _wire(value: Any) -> Any:
    """Field value → JSON-ready value (typed payloads become the dicts the wire always had)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Diagnostic):
        return value.to_dict()
    if isinstance(value, AgentEvent):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_wire(item) for item in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEvent:
    """Base of every engine event. `ts` is stamped when the event is made (it is emitted at once)."""

    name: ClassVar[str] = ""
    logged: ClassVar[bool] = True  # written to the daily log file
    quiet: ClassVar[bool] = False  # too frequent or too internal for a printed line or the log pane
    ts: str = field(default_factory=now_iso)
    level: Level = "info"

    def to_json(self, without: tuple[str, ...] = ()) -> dict[str, Any]:
        """The wire object: `event`, `ts`, `level`, then this event's fields in order (less
        `without`: the HTTP API adds an agent batch's records from bytes it already has)."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(
                f.name for f in fields(cls) if f.name not in ("ts", "level") and f.metadata.get("wire", True)
            )
        data: dict[str, Any] = {"event": self.name, "ts": self.ts, "level": self.level}
        for name in names:
            if name not in without:
                data[name] = _wire(getattr(self, name))
        return data

    def describe(self) -> str:
        """One readable sentence, without time stamp or level (the printer adds those)."""
        return self.name.replace("_", " ")

    def needs_attention(self) -> bool:
        """Whether a person should hear of it away from the screen (`notify.command`, the UI's
        desktop notification): a stage failed for good, a host down, the budget spent, intake
        failing for `notify.intake_failures` cycles, a drain finished. Never a completion."""
        return False


Listener = Callable[[EngineEvent], None]


# -- the supervisor ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStarted(EngineEvent):
    name: ClassVar[str] = "supervisor_started"
    workflow: str
    root: str
    pid: int

    def describe(self) -> str:
        return f"supervisor started (pid {self.pid}): {self.workflow}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStopped(EngineEvent):
    name: ClassVar[str] = "supervisor_stopped"
    iterations: int

    def describe(self) -> str:
        return f"supervisor stopped after {plural(self.iterations, 'intake cycle')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Log(EngineEvent):
    """A free-form message from the engine (warnings about the config watcher, reload findings...)."""

    name: ClassVar[str] = "log"
    message: str

    def describe(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloaded(EngineEvent):
    name: ClassVar[str] = "config_reloaded"
    warnings: int

    def describe(self) -> str:
        return "workflow reloaded" + (f" ({plural(self.warnings, 'warning')})" if self.warnings else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRejected(EngineEvent):
    name: ClassVar[str] = "config_rejected"
    level: Level = "error"
    errors: tuple[Diagnostic, ...]

    def describe(self) -> str:
        count = len(self.errors)
        return f"workflow edit rejected ({plural(count, 'error')}); the last good configuration stays"


# -- intake ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class IntakePolling(EngineEvent):
    name: ClassVar[str] = "intake_polling"
    logged: ClassVar[bool] = False
    quiet: ClassVar[bool] = True

    def describe(self) -> str:
        return "polling the tracker"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intake(EngineEvent):
    name: ClassVar[str] = "intake"
    issues: int
    rejected: int
    iteration: int

    def describe(self) -> str:
        return f"intake: {self.issues} issues, {self.rejected} rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeFailed(EngineEvent):
    name: ClassVar[str] = "intake_failed"
    level: Level = "error"
    error: str
    exit_code: int | None
    stderr: str
    iteration: int
    failures: int = 1  # pulls failed in a row, this one included
    attention: bool = False  # this failure made the streak reach notify.intake_failures (once per streak)

    def describe(self) -> str:
        if self.attention:
            return f"intake failed {plural(self.failures, 'time')} in a row: {self.error}"
        return f"intake failed: {self.error}"

    def needs_attention(self) -> bool:
        return self.attention


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakePaused(EngineEvent):
    name: ClassVar[str] = "intake_paused"

    def describe(self) -> str:
        return "intake paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeResumed(EngineEvent):
    name: ClassVar[str] = "intake_resumed"

    def describe(self) -> str:
        return "intake resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueRejected(EngineEvent):
    name: ClassVar[str] = "issue_rejected"
    level: Level = "warning"
    id: str | None
    index: int | None  # position in the pull output; None when rejected after intake
    reason: str

    def describe(self) -> str:
        return f"issue rejected: {self.reason}"


# -- one (issue, stage) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class StageEvent(EngineEvent):
    """An event about one (issue, stage): `issue` and `stage` come first on the wire."""

    issue: str
    stage: str

    @property
    def where(self) -> str:
        return f"{self.issue}/{self.stage}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageReserved(StageEvent):
    name: ClassVar[str] = "stage_reserved"
    logged: ClassVar[bool] = False
    quiet: ClassVar[bool] = True
    attempt: int

    def describe(self) -> str:
        return f"{self.where} reserved (attempt {self.attempt})"


@dataclass(frozen=True, slots=True, kw_only=True)
class HookFinished(StageEvent):
    name: ClassVar[str] = "hook_finished"
    hook: str
    ok: bool
    exit_code: int | None
    timed_out: bool
    error: str | None
    stdout_tail: str
    stderr_tail: str

    def describe(self) -> str:
        if self.ok:
            status = "ok"
        elif self.error:
            status = f"FAILED ({self.error})"
        elif self.timed_out:
            status = "FAILED (timed out)"
        else:
            status = f"FAILED (exit {self.exit_code})" if self.exit_code is not None else "FAILED"
        return f"{self.where} hook {self.hook}: {status}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageStarted(StageEvent):
    name: ClassVar[str] = "stage_started"
    attempt: int
    pid: int | None
    session_file: str
    host: str | None = None  # the SSH host it runs on; None: this machine (`pid` is then the local `ssh`)

    def describe(self) -> str:
        on = f" on {self.host}" if self.host else ""
        return f"{self.where} started{on} (attempt {self.attempt}, pid {self.pid})"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageFinished(StageEvent):
    name: ClassVar[str] = "stage_finished"
    attempt: int
    state: RunStatus  # completed, failed or cancelled
    reason: str | None
    exit_code: int | None
    signal: int | None
    tokens: Mapping[str, int]
    session_file: str | None

    def describe(self) -> str:
        tokens = self.tokens
        facts = [f"exit {self.exit_code}"] if self.exit_code is not None else []
        if self.signal is not None:
            facts.append(f"signal {self.signal}")
        facts.append(f"tokens in {tokens.get('input', 0)} out {tokens.get('output', 0)}")
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.where} {self.state.upper()}{reason} ({', '.join(facts)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(StageEvent):
    name: ClassVar[str] = "retry_scheduled"
    attempt: int  # the next one
    delay_sec: float
    due_at: str | None

    def describe(self) -> str:
        return f"{self.where} retry #{self.attempt} in {self.delay_sec:g}s"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryGivenUp(StageEvent):
    name: ClassVar[str] = "retry_given_up"
    level: Level = "error"
    attempts: int
    reason: str | None

    def describe(self) -> str:
        return f"{self.where} given up after {plural(self.attempts, 'attempt')}: {self.reason}"

    def needs_attention(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDropped(StageEvent):
    name: ClassVar[str] = "retry_dropped"
    reason: str

    def describe(self) -> str:
        return f"{self.where} retry dropped: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcilePending(StageEvent):
    name: ClassVar[str] = "reconcile_pending"
    reason: str
    grace_sec: float

    def describe(self) -> str:
        return f"{self.where} will stop in {self.grace_sec:g}s: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueMoved(StageEvent):
    """A running stage's issue left the stage's state (often the agent moving it as its last
    act, as vik's prompts ask) or vanished: information only; the stage keeps running, as in
    vik, unless `loop.reconcile` is on (then `reconcile_pending` follows instead)."""

    name: ClassVar[str] = "issue_moved"
    state: str | None  # the issue's new state; None when it is no longer listed
    reason: str

    def describe(self) -> str:
        return f"{self.where} {self.reason}; the stage keeps running"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvents(StageEvent):
    """A batch of a session's agent events, as appended to its session file."""

    name: ClassVar[str] = "agent_events"
    logged: ClassVar[bool] = False
    quiet: ClassVar[bool] = True
    attempt: int
    session_file: str
    records: Sequence[AgentEvent]
    # the records' session-file lines, as the session wrote them (one per record; b"": not
    # known): the HTTP API streams these bytes instead of encoding the records again
    lines: bytes = field(default=b"", repr=False, compare=False, metadata={"wire": False})

    def describe(self) -> str:
        count = len(self.records)
        return f"{self.where} {plural(count, 'agent event')}"


# -- SSH worker hosts ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class HostUnhealthy(EngineEvent):
    """A worker host failed its check: its capacity leaves the pool until a check passes."""

    name: ClassVar[str] = "host_unhealthy"
    level: Level = "error"
    host: str
    error: str

    def describe(self) -> str:
        return f"host {self.host} unreachable: {self.error}; no new stage goes there until a check passes"

    def needs_attention(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class HostHealthy(EngineEvent):
    name: ClassVar[str] = "host_healthy"
    host: str
    recovered: bool  # false: the first check at start-up

    def describe(self) -> str:
        return f"host {self.host} is {'reachable again' if self.recovered else 'ready'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueRehosted(EngineEvent):
    """An issue's host stayed unreachable, so its next attempt runs elsewhere, in a new workspace."""

    name: ClassVar[str] = "issue_rehosted"
    level: Level = "warning"
    issue: str
    from_host: str
    to_host: str
    reason: str

    def describe(self) -> str:
        return (
            f"{self.issue} moves from {self.from_host} to {self.to_host} ({self.reason});"
            f" its workspace is created afresh there (after_create runs)"
        )


# -- in charge of a long run: drain, budgets, rate limits --------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class DrainStarted(EngineEvent):
    """No new stage starts and no retry; the supervisor exits once the running ones ended."""

    name: ClassVar[str] = "drain_started"
    level: Level = "warning"
    running: int

    def describe(self) -> str:
        return f"draining: no new stage starts; exiting once {plural(self.running, 'running stage')} end"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainCancelled(EngineEvent):
    name: ClassVar[str] = "drain_cancelled"

    def describe(self) -> str:
        return "drain cancelled: dispatch resumes"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainFinished(EngineEvent):
    name: ClassVar[str] = "drain_finished"
    level: Level = "warning"
    retries_kept: int  # pending retries left in service/retries.jsonl for the next start

    def describe(self) -> str:
        kept = f"; {self.retries_kept} pending retr{'y' if self.retries_kept == 1 else 'ies'} kept" * bool(
            self.retries_kept
        )
        return f"drain finished: every running stage ended; the supervisor exits{kept}"

    def needs_attention(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetSpent(EngineEvent):
    """`loop.budget.daily_tokens` reached: dispatch waits for the next UTC day (or a reload)."""

    name: ClassVar[str] = "budget_spent"
    level: Level = "error"
    used: int
    limit: int
    resumes_at: str

    def describe(self) -> str:
        return (
            f"daily token budget spent ({self.used} of {self.limit}); no new stage starts until {self.resumes_at}"
            " or a reload raises loop.budget.daily_tokens"
        )

    def needs_attention(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimited(EngineEvent):
    """A runtime's provider is rate-limited: its new sessions wait (running ones go on)."""

    name: ClassVar[str] = "rate_limited"
    level: Level = "warning"
    runtime: str
    until: str
    reason: str

    def describe(self) -> str:
        return f"{self.runtime} rate-limited until {self.until} ({self.reason}); its new sessions wait"


EVENT_TYPES: tuple[type[EngineEvent], ...] = (
    SupervisorStarted,
    SupervisorStopped,
    Log,
    ConfigReloaded,
    ConfigRejected,
    IntakePolling,
    Intake,
    IntakeFailed,
    IntakePaused,
    IntakeResumed,
    IssueRejected,
    StageReserved,
    HookFinished,
    StageStarted,
    StageFinished,
    RetryScheduled,
    RetryGivenUp,
    RetryDropped,
    ReconcilePending,
    IssueMoved,
    AgentEvents,
    HostUnhealthy,
    HostHealthy,
    IssueRehosted,
    DrainStarted,
    DrainCancelled,
    DrainFinished,
    BudgetSpent,
    RateLimited,
)


def plural(count: int, noun: str) -> str:
    """`1 attempt`, `2 attempts`: every count the engine and the screens put in words."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
