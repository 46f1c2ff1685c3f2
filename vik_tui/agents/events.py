"""The provider-neutral event vocabulary (vik's `AgentEvent` kinds) and our `outcome` record.

Each event is a small slotted dataclass; `to_dict()` gives the JSON object written one per
line to the session file. Plain dataclasses (not pydantic) because this is the hot path:
every stdout line of every agent goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True, kw_only=True)
class AgentEvent:
    """Base: every event has a `kind`; subclasses add vik's fields.

    `ts` is stamped by the session when the line is read (UTC ISO-8601); it is written last
    in the record so the other fields read first in a session file.
    """

    kind: ClassVar[str] = ""
    ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """`kind` plus every field that is set (None fields are left out), `ts` last."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name != "ts")
        data: dict[str, Any] = {"kind": self.kind}
        for name in names:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.ts is not None:
            data["ts"] = self.ts
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AgentEvent:
        """A session-file record back into its event. Never raises: a record of an unknown
        kind, or whose fields do not fit, comes back as `Unknown` holding the record whole."""
        event_cls = KINDS.get(record.get("kind"))  # type: ignore[arg-type]
        if event_cls is None:
            return Unknown(raw=record, ts=_str_or_none(record.get("ts")))
        names = _FIELD_NAMES.get(event_cls)
        if names is None:
            names = _FIELD_NAMES[event_cls] = tuple(f.name for f in fields(event_cls) if f.name != "ts")
        known = {name: record[name] for name in names if name in record}
        try:
            return event_cls(**known, ts=_str_or_none(record.get("ts")))
        except TypeError:
            return Unknown(raw=record, ts=_str_or_none(record.get("ts")))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True, kw_only=True)
class SessionStarted(AgentEvent):
    kind: ClassVar[str] = "session_started"
    session_id: str | None = None
    model: str | None = None
    cwd: str | None = None


@dataclass(slots=True, kw_only=True)
class Message(AgentEvent):
    """Agent text. role is `assistant`, `reasoning` (thinking) or `user`."""

    kind: ClassVar[str] = "message"
    text: str = ""
    role: str = "assistant"


@dataclass(slots=True, kw_only=True)
class TokenUsage(AgentEvent):
    """Tokens used by one turn (additive across a session)."""

    kind: ClassVar[str] = "token_usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True, kw_only=True)
class RateLimit(AgentEvent):
    """A provider's rate-limit observation; the latest per `scope` wins."""

    kind: ClassVar[str] = "rate_limit"
    scope: str = "default"
    used_percent: float | None = None
    remaining: int | None = None
    limit: int | None = None
    resets_at: str | None = None
    raw: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class ToolCall(AgentEvent):
    """A tool invocation: `started`, then `completed` or `failed` with the same call_id."""

    kind: ClassVar[str] = "tool_call"
    call_id: str | None = None
    name: str = ""
    status: str = "started"
    input: str | None = None
    output: str | None = None
    exit_code: int | None = None


@dataclass(slots=True, kw_only=True)
class Subagent(AgentEvent):
    """A delegated sub-agent (Claude Task/Agent, Codex collab tools)."""

    kind: ClassVar[str] = "subagent"
    call_id: str | None = None
    name: str = ""
    status: str = "started"
    description: str | None = None


@dataclass(slots=True, kw_only=True)
class Unknown(AgentEvent):
    """Anything we do not model, kept whole so nothing is lost."""

    kind: ClassVar[str] = "unknown"
    raw: Any = None


@dataclass(slots=True, kw_only=True)
class Completed(AgentEvent):
    """The provider says the run finished. `success` false means a provider-reported failure."""

    kind: ClassVar[str] = "completed"
    success: bool = True
    result: str | None = None


@dataclass(slots=True, kw_only=True)
class Error(AgentEvent):
    """A provider error. `fatal` errors fail the run; transient ones are only shown."""

    kind: ClassVar[str] = "error"
    message: str = ""
    fatal: bool = False
    raw: Any = None


@dataclass(slots=True, kw_only=True)
class Outcome(AgentEvent):
    """Our final record: how the session ended, so the file alone tells the story."""

    kind: ClassVar[str] = "outcome"
    state: str = "failed"
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None


KINDS: dict[str, type[AgentEvent]] = {
    cls.kind: cls
    for cls in (SessionStarted, Message, TokenUsage, RateLimit, ToolCall, Subagent, Unknown, Completed, Error, Outcome)
}
