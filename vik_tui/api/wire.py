"""The wire schema of the HTTP API: what every route's body is, and how the typed contract of
the engine crosses it.

The engine's own types are the schema: pydantic `TypeAdapter`s serialise the frozen view
dataclasses (`EngineView` and everything in it, `Terminal`) and read them back into the same
classes, so a client holds exactly what the in-process UI holds; no class has a hand-written
`to_dict`. Engine events travel as their headless JSON object (`EngineEvent.to_json()`, what
`run --json` prints) and come back through `event_from_json`. The bodies of vik's planned routes
follow Symphony's SPEC §13.7 (`generated_at`, `counts`, `running[]`, `retrying[]`,
`codex_totals`, `rate_limits`; the `{"error": {"code", "message"}}` envelope); our facts are
additive keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from vik_tui.agents.events import AgentEvent
from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.engine import engine_events as ee
from vik_tui.engine.view import EngineView, Explanation, Terminal

API_VERSION = 1

# -- the typed views ---------------------------------------------------------------------------
VIEW: TypeAdapter[EngineView] = TypeAdapter(EngineView)
"""`GET /api/v1/view`: the whole `EngineView`, as `Supervisor.snapshot()` returns it."""


@dataclass(frozen=True, slots=True)
class TerminalPlan:
    """`GET .../shell` and `.../takeover`: what to run attached to a terminal, where, and on
    which machine. `host` None: the supervisor's machine; a client elsewhere shows
    `command_line` instead of running it (the argv of an SSH host's plan already is `ssh -t`)."""

    argv: tuple[str, ...]
    cwd: str
    what: str
    command_line: str
    host: str | None = None
    supervisor_host: str = ""  # the supervisor machine's name: a client on another machine cannot run argv

    @classmethod
    def of(cls, terminal: Terminal, host: str | None, supervisor_host: str) -> TerminalPlan:
        return cls(terminal.argv, str(terminal.cwd), terminal.what, terminal.command_line, host, supervisor_host)

    def terminal(self) -> Terminal:
        """Back into the engine's type (what `Engine.shell_plan` / `takeover_plan` return)."""
        from pathlib import Path

        return Terminal(tuple(self.argv), Path(self.cwd), self.what)


TERMINAL_PLAN: TypeAdapter[TerminalPlan] = TypeAdapter(TerminalPlan)


# -- Symphony's bodies (SPEC §13.7), with our additive keys ---------------------------------------
@dataclass(frozen=True, slots=True)
class TokenCounts:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0  # ours


@dataclass(frozen=True, slots=True)
class RunningEntry:
    """One running (issue, stage) in `GET /state`'s `running[]`."""

    issue_id: str
    issue_identifier: str
    issue_url: str | None
    state: str  # the tracker state of the issue
    session_id: str | None  # the agent's own session id, once it said it
    turn_count: int
    last_event: str | None
    last_message: str
    started_at: str | None
    last_event_at: str | None
    tokens: TokenCounts
    # ours
    stage: str
    attempt: int
    status: str  # reserved | preparing | running
    pid: int | None
    session_uuid: str | None
    session_file: str | None
    worker_host: str | None
    workspace_path: str | None


@dataclass(frozen=True, slots=True)
class RetryingEntry:
    issue_id: str
    issue_identifier: str
    issue_url: str | None
    attempt: int
    due_at: str | None
    error: str | None
    # ours
    stage: str
    due_in: float
    worker_host: str | None
    workspace_path: str | None


@dataclass(frozen=True, slots=True)
class CodexTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    seconds_running: float = 0.0
    cache_read_tokens: int = 0  # ours


@dataclass(frozen=True, slots=True)
class Counts:
    running: int
    retrying: int
    issues: int = 0  # ours: issues the tracker lists (and unlisted ones with history)
    attention: int = 0  # ours: issues with a failed stage, plus rejected records


@dataclass(frozen=True, slots=True)
class StateBody:
    """`GET /api/v1/state`."""

    generated_at: str
    counts: Counts
    running: tuple[RunningEntry, ...]
    retrying: tuple[RetryingEntry, ...]
    codex_totals: CodexTotals
    rate_limits: Mapping[str, Any] | None
    # ours
    workflow: str
    pid: int
    paused: bool
    intake: str  # IntakeStatus value
    max_issue_concurrency: int
    last_event_id: int  # the newest engine event id when this was generated (see GET /events)


@dataclass(frozen=True, slots=True)
class RecentEvent:
    at: str | None
    event: str
    message: str


@dataclass(frozen=True, slots=True)
class IssueBody:
    """`GET /api/v1/issues/{issue_id}`: Symphony's issue body plus the issue's whole typed view."""

    issue_identifier: str
    issue_id: str
    status: str  # running | retrying | failed | completed | cancelled | idle
    workspace: Mapping[str, Any]  # {"path": ..., "host": ...}
    attempts: Mapping[str, int]  # {"restart_count", "current_retry_attempt"}
    running: tuple[RunningEntry, ...]  # Symphony has one; an issue of ours may run several stages
    retry: tuple[RetryingEntry, ...]
    logs: Mapping[str, Any]  # {"codex_session_logs": [{"label", "path", "url"}]}
    recent_events: tuple[RecentEvent, ...]
    last_error: str | None
    tracked: Mapping[str, Any]  # the tracker's extra fields
    # ours
    title: str
    state: str
    listed: bool
    worker_host: str | None
    workspace_path: str | None
    view: Any  # the IssueView, as VIEW serialises it
    explain: Explanation | None = None  # why it is (not) running: `engine/explain`


@dataclass(frozen=True, slots=True)
class RefreshBody:
    """`POST /api/v1/refresh` (202)."""

    queued: bool
    coalesced: bool
    requested_at: str
    operations: tuple[str, ...] = ("poll", "reconcile")


@dataclass(frozen=True, slots=True)
class CommandBody:
    """Every other command (cancel, retry, pause, resume, stop): what the engine answered.

    `message` is the engine's own sentence (what `Engine.cancel()` / `retry()` return); `ok` is
    false when the engine did nothing (a stage that is not running, already running...)."""

    ok: bool
    message: str
    issue_id: str | None = None
    stages: tuple[str, ...] = ()  # the stages the command applied to
    paused: bool | None = None  # pause / resume: intake's state afterwards


@dataclass(frozen=True, slots=True)
class DiffBody:
    """`GET /issues/{issue_id}/diff`: `git status` and `git diff` of its workspace, as text."""

    issue_id: str
    diff: str


@dataclass(frozen=True, slots=True)
class RecordsBody:
    """`GET /sessions/{issue_id}/{file}/records`: session records (vik's `AgentEvent` objects, as
    written one per line) read from a byte offset, whole lines only. Ask again with
    `offset=next_offset` to tail the file; `size` is the file's length when it was read."""

    records: tuple[Mapping[str, Any], ...]
    next_offset: int
    size: int


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The envelope of every error: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorDetail


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(cls: type[Any]) -> TypeAdapter[Any]:
    """One TypeAdapter per class (bodies, views, events), built once."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def dump(body: Any) -> bytes:
    """Any body (or view) above as JSON bytes."""
    return adapter(type(body)).dump_json(body)


def load(cls: type[Any], data: bytes | str) -> Any:
    """A body read back into its class (a client's side of `dump`)."""
    return adapter(cls).validate_json(data)


# -- engine events -------------------------------------------------------------------------------
EVENT_CLASSES: Mapping[str, type[ee.EngineEvent]] = {cls.name: cls for cls in ee.EVENT_TYPES}

STREAM_RESET = "stream_reset"
"""The SSE event sent first when `Last-Event-ID` is older than the replay ring: events were
missed, so the client must fetch `/view` again. Its data: `{"event", "asked", "oldest", "last"}`."""


def event_to_json(event: ee.EngineEvent) -> dict[str, Any]:
    """The headless JSON object (`run --json`, the daily log): the one wire form of an event."""
    return event.to_json()


def event_from_json(data: Mapping[str, Any]) -> ee.EngineEvent | None:
    """An event object read back into its class; None for an event name this version does not
    know (a newer supervisor may send more; a client skips them)."""
    cls = EVENT_CLASSES.get(str(data.get("event")))
    if cls is None:
        return None
    fields = {key: value for key, value in data.items() if key != "event"}
    if "records" in fields:  # agent events: the session-file vocabulary has its own reader
        fields["records"] = tuple(AgentEvent.from_record(dict(r)) for r in fields["records"] if isinstance(r, Mapping))
    if "errors" in fields:
        fields["errors"] = tuple(_diagnostic(d) for d in fields["errors"] if isinstance(d, Mapping))
    # the typed payloads decoded above are instances already: pydantic keeps them as they are
    event: ee.EngineEvent = adapter(cls).validate_python(fields)
    return event


def _diagnostic(data: Mapping[str, Any]) -> Diagnostic:
    code: Any = data.get("code", "")
    payload = None
    if isinstance(code, Mapping) and code:  # vik's externally tagged code: {"name": value}
        code, payload = next(iter(code.items()))
    return Diagnostic(
        severity=Severity(str(data.get("severity", "error"))),
        pointer=str(data.get("pointer", "")),
        code=str(code),
        message=str(data.get("message", "")),
        line=data.get("line") if isinstance(data.get("line"), int) else None,
        column=data.get("column") if isinstance(data.get("column"), int) else None,
        payload=payload,
    )


@dataclass(frozen=True, slots=True)
class Hello:
    """The first SSE event of every stream (`event: hello`, not an engine event): who serves."""

    pid: int
    workflow: str
    last_event_id: int
    api_version: int = API_VERSION
    ring: int = 0  # how many events the replay ring keeps
    extra: Mapping[str, Any] = field(default_factory=dict)
