"""The provider-neutral event vocabulary: vik's `AgentEvent` kinds, with our detail added.

Each event is a small slotted dataclass; `to_dict()` gives the JSON object written one per
line to the session file. Plain dataclasses (not pydantic) because this is the hot path:
every stdout line of every agent goes through here.

Every record must parse as vik's `AgentEvent` (vik `src/agent/response.rs`, a serde enum tagged
by `kind`): vik's fields keep vik's names and types and are always written (an absent optional
one as `null`), so a tool written for vik's session files reads ours. Our extra detail (`ts`,
`role`, `fatal`, `exit_code`, the token breakdown, ...) is additive, which vik's reader ignores,
and is left out when it is null. The session's outcome is written as a final `completed` or
`error` record carrying an `outcome` object (`Outcome`), because vik knows no `outcome` kind.

Where vik writes a provider line differently from our reading of it (a Codex shell call is vik's
`command_execution` tool call holding the item object; a reasoning item is vik's `unknown`), the
event carries `vik`: the record exactly as vik writes it. Our reading is then added after it,
`vik_tui_kind` naming our kind when it differs, and `vik_tui_<field>` holding ours where vik's
field of the same name holds vik's value; `from_record` reads our reading back. The engine's own
notices (a killed leftover, a cut line, a mapper bug) are `unknown` records with an `event_type`
of `vik_tui.*`, so a reader applying vik's rules never takes one for the session's failure.

Token counts mean the same for every runtime: `input` is every prompt token the model read,
cached or not; `cache_read` and `cache_write` are the parts of `input` read from and written
to the prompt cache; `output` is every generated token, `reasoning` the part of it spent
thinking (Codex reports it; Claude does not split it out).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

# per class: (wire name, always written), vik's fields first in vik's order, then ours
_LAYOUTS: dict[type, tuple[tuple[str, bool], ...]] = {}
TOKEN_KEYS = ("input", "output", "cache_read", "cache_write", "reasoning")
# names our files used before they spoke vik's vocabulary: still read back (history survives)
_LEGACY_NAMES = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_tokens": "cache_read",
    "cache_write_tokens": "cache_write",
    "reasoning_tokens": "reasoning",
    "message": "detail",
}


OURS = "vik_tui_"  # prefix of our value of a field whose plain name holds vik's
NOTICE = "vik_tui.notice"  # event_type of the engine's own notices
MAPPER_ERROR = "vik_tui.mapper_error"  # event_type of an adapter's failure on one line
_NOT_WRITTEN = frozenset({"ts", "vik", "wire"})


def _layout(cls: type) -> tuple[tuple[str, bool], ...]:
    vik: tuple[str, ...] = getattr(cls, "VIK_FIELDS", ())
    ours = tuple(f.name for f in fields(cls) if f.name not in _NOT_WRITTEN and f.name not in vik)
    layout = tuple((name, True) for name in vik) + tuple((name, False) for name in ours)
    _LAYOUTS[cls] = layout
    return layout


@dataclass(slots=True, kw_only=True)
class AgentEvent:
    """Base: every event has a `kind`; subclasses add vik's fields (`VIK_FIELDS`) and ours.

    `ts` is stamped by the session when the line is read (UTC ISO-8601); it is written last
    in the record so the other fields read first in a session file.

    `wire`, when a mapper set it, is what `to_dict()` returns but `ts`, made in the same pass
    as the event (a mapper's fast path for the frequent lines: one dict, no second reading of
    the event's fields); `to_dict()` itself never reads it, and tests hold the two equal.
    """

    kind: ClassVar[str] = ""
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ()
    ts: str | None = None
    # the record as vik writes it, when that is not our reading. Not part of what the event *is*:
    # a live event and its copy read back from the session file compare equal (`merge_replay`)
    vik: dict[str, Any] | None = field(default=None, compare=False)
    # `to_dict()` without `ts`, built by a mapper's fast path for the common lines; the session
    # takes it (and clears it) instead of working the record out again. Never compared.
    wire: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """`kind`, vik's fields (null included), our fields that are set, `ts` last."""
        layout = _LAYOUTS.get(type(self)) or _layout(type(self))
        if self.vik is not None:
            return self._as_vik(layout, self.vik)
        data: dict[str, Any] = {"kind": self.kind}
        for name, always in layout:
            value = getattr(self, name)
            if always or value is not None:
                data[name] = value
        if self.ts is not None:
            data["ts"] = self.ts
        return data

    def _as_vik(self, layout: tuple[tuple[str, bool], ...], vik: dict[str, Any]) -> dict[str, Any]:
        """vik's record, then our reading: `vik_tui_kind`, our fields, `vik_tui_<name>` where
        vik's field of that name holds another value than ours."""
        data = dict(vik)
        if vik.get("kind") != self.kind:
            data[OURS + "kind"] = self.kind
        for name, _always in layout:
            if name == "phase" or (name == "raw" and self.raw is None):  # type: ignore[attr-defined]
                continue  # derived from our status; no second copy of the provider line
            value = getattr(self, name)
            if name in vik:
                if value != vik[name] and not self._derivable(name, value, vik[name]):
                    data[OURS + name] = value
            elif value is not None:
                data[name] = value
        if self.ts is not None:
            data["ts"] = self.ts
        return data

    @staticmethod
    def _derivable(name: str, ours: Any, theirs: Any) -> bool:
        """Whether `from_record` finds our value inside vik's (not stored twice)."""
        return False

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AgentEvent:
        """A session-file record back into its event. Never raises: a record of an unknown
        kind, or whose fields do not fit, comes back as `Unknown` holding the record whole.
        Records written before the vik vocabulary (`outcome`, `input_tokens`, `message`) are
        read too."""
        kind = record.get("kind")
        ts = _str_or_none(record.get("ts"))
        ours = record.get(OURS + "kind")
        if isinstance(ours, str) and ours in KINDS:
            kind = ours
        elif kind == "unknown" and str(record.get("event_type")).startswith("vik_tui."):  # a notice
            return Error(detail=_str_or_none(record.get("detail")) or "", fatal=False, ts=ts)
        outcome = record.get("outcome")
        if isinstance(outcome, dict) and kind in ("completed", "error"):
            return Outcome.from_wire(record, outcome, ts)
        if kind == "outcome":  # the last line of files written before
            return Outcome.from_wire(record, record, ts)
        if kind == "unknown" and "scope" in record:  # a rate limit vik's `rate_limit` cannot hold
            kind = "rate_limit"
        if kind == "completed" and record.get("success") is False:  # an older provider failure
            return Error(detail=_str_or_none(record.get("result")) or "the agent reported a failure", fatal=True, ts=ts)
        event_cls = KINDS.get(kind)  # type: ignore[arg-type]
        if event_cls is None:
            return Unknown(raw=record, ts=ts)
        layout = _LAYOUTS.get(event_cls) or _layout(event_cls)
        known: dict[str, Any] = {}
        for name, _always in layout:
            if OURS + name in record:
                known[name] = record[OURS + name]
            elif name in record:
                known[name] = record[name]
        known = event_cls.ours_from_vik(known, record)
        for old, new in _LEGACY_NAMES.items():
            if old in record and new not in known and any(name == new for name, _ in layout):
                known[new] = record[old]
        known.pop("phase", None)  # derived from `status`
        try:
            event = event_cls(**known, ts=ts)
        except TypeError:
            return Unknown(raw=record, ts=ts)
        if any(key.startswith(OURS) for key in record):  # written in vik's form: keep it, so it writes back the same
            event.vik = {key: value for key, value in record.items() if key != "ts" and not key.startswith(OURS)}
        return event

    @classmethod
    def ours_from_vik(cls, known: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """Our fields from a record written in vik's form (`ToolCall` derives some)."""
        return known


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """A field our UI shows as text, from whatever JSON a record holds there."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True, kw_only=True)
class SessionStarted(AgentEvent):
    """The agent's own session id (what `codex resume` / `claude --resume` take)."""

    kind: ClassVar[str] = "session_started"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("session_id",)
    session_id: str = ""
    model: str | None = None
    cwd: str | None = None


@dataclass(slots=True, kw_only=True)
class Message(AgentEvent):
    """Agent text. role is `assistant`, `reasoning` (thinking), `plan` or `user`."""

    kind: ClassVar[str] = "message"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("text",)
    text: str = ""
    role: str = "assistant"


@dataclass(slots=True, kw_only=True)
class TokenUsage(AgentEvent):
    """Tokens used since the previous `token_usage` of the session (a session's total is the
    sum, as in vik). The meaning of each number is in the module docstring."""

    kind: ClassVar[str] = "token_usage"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("input", "output", "cache_read")
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def counts(self) -> dict[str, int]:
        return {key: getattr(self, key) or 0 for key in TOKEN_KEYS}


@dataclass(slots=True, kw_only=True)
class RateLimit(AgentEvent):
    """A provider's rate-limit observation; the latest per `scope` wins.

    vik requires `remaining`, `reset_at` and `observed_at`. Providers report a used
    percentage, so `remaining` is the percentage left (`limit` 100). An observation without
    a figure or a reset time is written as an `unknown` record (the provider line in `raw`)
    with our fields added, and read back as a rate limit.
    """

    kind: ClassVar[str] = "rate_limit"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("scope", "remaining", "reset_at", "observed_at")
    scope: str = "default"
    remaining: int | None = None
    reset_at: str | None = None
    observed_at: str | None = None
    used_percent: float | None = None
    limit: int | None = None
    event_type: str | None = None
    raw: Any = None

    @classmethod
    def observed(cls, scope: str, used_percent: float | None, reset_at: Any, raw: Any) -> RateLimit:
        """An observation made now from a used percentage and a reset time (any ISO form)."""
        remaining = None if used_percent is None else max(0, min(100, round(100 - used_percent)))
        return cls(
            scope=scope,
            remaining=remaining,
            reset_at=utc_time(reset_at),
            observed_at=now_utc(),
            used_percent=used_percent,
            limit=None if remaining is None else 100,
            event_type=_str_or_none(raw.get("type")) if isinstance(raw, dict) else None,
            raw=raw,
        )

    @property
    def complete(self) -> bool:
        """Whether vik's `rate_limit` can hold it (every required field known)."""
        return self.remaining is not None and self.reset_at is not None and self.observed_at is not None

    def to_dict(self) -> dict[str, Any]:
        if self.complete:
            data = AgentEvent.to_dict(self)
            data.pop("event_type", None)  # vik's `rate_limit` has none; keep the record small
            return data
        data = {"kind": "unknown", "event_type": self.event_type, "raw": self.raw, "scope": self.scope}
        for name in ("remaining", "reset_at", "observed_at", "used_percent", "limit"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.ts is not None:
            data["ts"] = self.ts
        return data


@dataclass(slots=True, kw_only=True)
class ToolCall(AgentEvent):
    """A tool invocation: `started`, then `completed` or `failed` with the same call_id.

    vik's `phase` follows from `status` (`request` when started, else `result`). `raw` is
    null: our fields carry what the provider said, and a tool's output is not stored twice.
    """

    kind: ClassVar[str] = "tool_call"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("call_id", "name", "phase", "input", "output", "raw")
    call_id: str | None = None
    name: str = ""
    status: str = "started"
    input: str | None = None
    output: str | None = None
    exit_code: int | None = None
    raw: Any = None

    @property
    def phase(self) -> str:
        return "request" if self.status == "started" else "result"

    @staticmethod
    def _derivable(name: str, ours: Any, theirs: Any) -> bool:
        # a Codex command item holds its output: vik's `output` object carries ours
        return name == "output" and isinstance(theirs, dict) and theirs.get("aggregated_output") == ours

    @classmethod
    def ours_from_vik(cls, known: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        for name in ("input", "output"):
            value = known.get(name)
            if name == "output" and OURS + name not in record and isinstance(value, dict):
                value = value.get("aggregated_output", value)
            known[name] = _text(value)
        if not isinstance(known.get("name"), str):
            known["name"] = "tool"
        return known


@dataclass(slots=True, kw_only=True)
class Subagent(AgentEvent):
    """A delegated sub-agent (Claude Task/Agent, Codex collab tools).

    `action` is the tool that delegated (vik's field), `name` the sub-agent's kind, and
    `target_ids` the threads it runs in when the provider says so.
    """

    kind: ClassVar[str] = "subagent"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("call_id", "action", "status", "target_ids", "raw")
    call_id: str | None = None
    action: str = ""
    status: str = "started"
    target_ids: list[str] = field(default_factory=list)
    name: str = ""
    description: str | None = None
    raw: Any = None


@dataclass(slots=True, kw_only=True)
class Unknown(AgentEvent):
    """Anything we do not model, kept whole so nothing is lost; `event_type` is its `type`."""

    kind: ClassVar[str] = "unknown"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("event_type", "raw")
    event_type: str | None = None
    raw: Any = None

    def __post_init__(self) -> None:
        if self.event_type is None and isinstance(self.raw, dict):
            self.event_type = _str_or_none(self.raw.get("type"))


@dataclass(slots=True, kw_only=True)
class Completed(AgentEvent):
    """The provider says the run finished successfully (vik's unit variant).

    `result` is the provider's final text only when it differs from the last assistant
    message, so a large final answer is stored once. A provider-reported failure is an
    `Error` with `fatal`, never a `completed`.
    """

    kind: ClassVar[str] = "completed"
    result: str | None = None


@dataclass(slots=True, kw_only=True)
class Error(AgentEvent):
    """A provider error or notice (vik's `detail`). `fatal` errors fail the run; the others
    are only shown. `retry` marks the CLI's own retry notices (Codex "Reconnecting...",
    Claude `api_retry`): a run stopped by a timeout or stall after one names it."""

    kind: ClassVar[str] = "error"
    VIK_FIELDS: ClassVar[tuple[str, ...]] = ("detail",)
    detail: str = ""
    fatal: bool = False
    retry: bool | None = None
    raw: Any = None


@dataclass(slots=True, kw_only=True)
class Outcome(AgentEvent):
    """How the session ended, so the file alone tells the story; always its last record.

    Written as vik's `completed` (state completed) or `error` (failed, cancelled: `detail`
    is the reason) with our `outcome` object: state, reason, exit_code, signal, tokens (the
    session's totals), started_at, ended_at. A completed run's provider completion is this
    same record, with its `result` when it has one.
    """

    kind: ClassVar[str] = "outcome"
    state: str = "failed"
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    result: str | None = None

    def to_dict(self) -> dict[str, Any]:
        outcome = {
            "state": self.state,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "tokens": self.tokens,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }
        data: dict[str, Any]
        if self.state == "completed":
            data = {"kind": "completed"}
            if self.result is not None:
                data["result"] = self.result
        else:
            data = {"kind": "error", "detail": self.reason}
        data["outcome"] = outcome
        if self.ts is not None:
            data["ts"] = self.ts
        return data

    @classmethod
    def from_wire(cls, record: dict[str, Any], outcome: dict[str, Any], ts: str | None) -> Outcome:
        """From a final record (`outcome` the nested object, or the old flat `outcome` line)."""

        def text(value: Any) -> str | None:
            return value if isinstance(value, str) else None

        def integer(value: Any) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        tokens = outcome.get("tokens")
        return cls(
            state=text(outcome.get("state")) or "failed",
            reason=text(outcome.get("reason")) or "",
            exit_code=integer(outcome.get("exit_code")),
            signal=integer(outcome.get("signal")),
            tokens={k: v for k, v in tokens.items() if integer(v) is not None} if isinstance(tokens, dict) else {},
            started_at=text(outcome.get("started_at")),
            ended_at=text(outcome.get("ended_at")),
            result=text(record.get("result")),
            ts=ts,
        )


def utc_time(value: Any) -> str | None:
    """An RFC 3339 UTC time (what vik's `DateTime<Utc>` reads) from an ISO string, else None."""
    return _utc_time(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=64)
def _utc_time(value: str) -> str | None:
    """Kept: every rate-limit line of a window repeats its reset time (~1 % of a Codex flood's
    lines, whose parsing and formatting was ~1 % of its CPU)."""
    if not _RFC3339.match(value):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_utc() -> str:
    """Now as RFC 3339 UTC with milliseconds, the way session files stamp `ts`."""
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

E = TypeVar("E", bound=AgentEvent)

KINDS: dict[str, type[AgentEvent]] = {
    cls.kind: cls
    for cls in (SessionStarted, Message, TokenUsage, RateLimit, ToolCall, Subagent, Unknown, Completed, Error)
}


def notice(detail: str, event_type: str = NOTICE) -> Error:
    """The engine's own notice (a killed leftover, a cut line): shown like a provider warning,
    written as vik's `unknown`, so a reader applying vik's rules never counts it a failure."""
    return Error(detail=detail, fatal=False, vik={"kind": "unknown", "event_type": event_type, "raw": None})


def mapper_failed(line: Any, exc: BaseException, runtime: str) -> list[AgentEvent]:
    """A mapper bug on one provider line: the line kept whole as vik's `unknown`, and a notice
    naming the exception (never an `error`: the agent did nothing wrong)."""
    return [Unknown(raw=line), notice(f"the {runtime} mapper failed on this line: {exc!r}", MAPPER_ERROR)]


def as_vik_unknown(event: E, line: Any) -> E:
    """`event`, written as vik writes this provider line: `unknown` with the line whole, our
    reading after it (vik has no kind for a reasoning item, a to-do list, a file change, ...)."""
    event_type = line.get("type") if isinstance(line, dict) else None
    event.vik = {"kind": "unknown", "event_type": event_type if isinstance(event_type, str) else None, "raw": line}
    return event
