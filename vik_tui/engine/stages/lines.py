"""The work each stdout line of an agent costs: decode, map to events, fold into the session's
facts, encode in vik's record form.

It lives apart from `session.py` (the process, its pipes and its outcome) because the same work
runs in two places: in the supervisor for most sessions, and in a reader process for sessions
that flood while the supervisor has other floods to read (`offload`). Both must make the same
records from the same lines, so there is one copy of it. Nothing here imports pydantic,
asyncio or pathlib: a reader process imports this and the mappers only (~14 MiB).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from vik_tui.agents import events as ev

if TYPE_CHECKING:
    from vik_tui.agents.registry import Mapper
    from vik_tui.engine.stages.facts import SessionFacts

# a record longer than this is encoded by the stdlib: orjson reserves several times a string's
# length up front and dies by SIGSEGV when that allocation fails (orjson 3.13, a 60 MiB message
# under an address-space limit), where the stdlib raises MemoryError, which ends the session only
LONG_LINE_BYTES = 1024 * 1024
UNDECODABLE = "vik_tui.undecodable_line"  # vik writes an `error` and fails; we skip the line


@dataclass(slots=True)
class ProviderSignals:
    """What the agent's own events say about the outcome (folded with the facts, read once at
    the end): its completion (held: written with the outcome), a fatal error, a retry notice."""

    completed_ok: bool = False
    completion: ev.Completed | None = None  # written with the outcome (one final record)
    retry_notice: str | None = None  # the CLI's last retry notice, if nothing came after
    provider_failure: str | None = None


class FoldedFacts:
    """The part of `SessionFacts` a session's lines fold into: what a reader process keeps of a
    session it maps (it has no use for the rest, nor for what importing it costs)."""

    __slots__ = ("agent_session_id", "events", "last_message", "rate_limits", "tokens", "tools_in_flight")

    def __init__(self) -> None:
        self.last_message: str | None = None
        self.tools_in_flight: dict[str, str] = {}
        self.tokens: dict[str, int] = dict.fromkeys(ev.TOKEN_KEYS, 0)
        self.rate_limits: dict[str, dict[str, Any]] = {}
        self.agent_session_id: str | None = None
        self.events = 0


# the event kinds the supervisor's budget and rate-limit count reads (`Holds.count`): a reader
# process sends these back as events, the rest as records only
COUNTED = frozenset((ev.TokenUsage, ev.RateLimit))

# the facts a session's lines fold into (`LineWork.apply`), handed to a reader process and back
FOLDED = ("last_message", "tools_in_flight", "tokens", "rate_limits", "agent_session_id")


def folded(snap: SessionFacts | FoldedFacts) -> tuple[Any, ...]:
    return tuple(getattr(snap, name) for name in FOLDED)


def fold_into(snap: SessionFacts | FoldedFacts, values: tuple[Any, ...]) -> None:
    for name, value in zip(FOLDED, values, strict=True):
        setattr(snap, name, value)


class LineWork:
    """Turns whole stdout lines into records for one session: `snap` and `signals` are folded
    in place, `mapper` keeps whatever state its runtime needs between lines."""

    def __init__(self, mapper: Mapper, snap: SessionFacts | FoldedFacts, signals: ProviderSignals) -> None:
        self.mapper = mapper
        self.snap = snap
        self.signals = signals

    def handle(
        self, lines: list[bytes], ts: str, encoded: list[bytes], dumps: Callable[..., bytes] | None = None
    ) -> list[ev.AgentEvent]:
        """Decode, map, fold and encode each line in one pass; add the batch's records to
        `encoded` as one bytes (one line per event, in order) and return the events.

        Called with a few dozen lines at a time: joining a whole 64 KiB chunk's records made
        glibc give the heap top back to the OS and fault it in again for every chunk (slower than
        the JSON work itself); a few KiB at a time stays in the cache and in the heap.
        """
        events: list[ev.AgentEvent] = []
        out: list[bytes] = []
        feed, apply, put = self.mapper.feed, self.apply, out.append
        loads, dumps, newline = orjson.loads, dumps or orjson.dumps, orjson.OPT_APPEND_NEWLINE
        signals = self.signals
        for raw in lines:
            try:
                obj = loads(raw)
            except ValueError:
                mapped = self.slow_line(raw)
            else:
                try:
                    mapped = feed(obj)
                except Exception as exc:  # an adapter bug must not kill the session
                    mapped = adapter_error(obj, exc)
            completion_kept = False
            for event in mapped:
                event.ts = ts
                if apply(event):  # the provider's completion: written later, with the outcome
                    completion_kept = True
                    continue
                record = event.wire  # the mapper's fast path made the record already
                if record is None:
                    record = event.to_dict()
                else:
                    event.wire = None
                    record["ts"] = ts
                try:
                    put(dumps(record, option=newline))
                except TypeError:  # e.g. an integer beyond 64 bits inside `raw`: the stdlib can
                    put(_json_line(record))
            events += [e for e in mapped if e is not signals.completion] if completion_kept else mapped
        if events:
            self.snap.events += len(events)
            encoded.append(out[0] if len(out) == 1 else b"".join(out))
        return events

    def slow_line(self, raw: bytes) -> list[ev.AgentEvent]:
        """A line orjson refused: the stdlib may still read it (huge ints, NaN); if not, it is
        recorded as an error (a blank line is skipped)."""
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            return [undecodable(raw, exc)] if raw.strip() else []
        try:
            return self.mapper.feed(obj)
        except Exception as exc:  # an adapter bug must not kill the session
            return adapter_error(obj, exc)

    def apply(self, event: ev.AgentEvent) -> bool:
        """Fold one event into the session's facts and the outcome signals (most frequent kinds
        first). True for the provider's completion, which is held: it is written as (or just
        before) the outcome record, so a completed session has one `completed`, as vik's have."""
        snap = self.snap
        match event:
            case ev.Message():
                if event.role == "assistant" and event.text:
                    snap.last_message = event.text
                    self.signals.retry_notice = None
            case ev.ToolCall() | ev.Subagent():
                key = event.call_id or event.name
                if event.status == "started":
                    snap.tools_in_flight[key] = event.name
                else:
                    snap.tools_in_flight.pop(key, None)
                self.signals.retry_notice = None
            case ev.TokenUsage():
                tokens = snap.tokens
                for key, value in event.counts().items():
                    tokens[key] = tokens.get(key, 0) + value
            case ev.Completed():
                self.signals.completed_ok = True
                self.signals.completion = event
                return True
            case ev.Error():
                signals = self.signals
                if event.fatal:
                    if signals.provider_failure is None:
                        signals.provider_failure = event.detail or "the agent reported a fatal error"
                elif event.retry:
                    signals.retry_notice = event.detail
            case ev.SessionStarted():
                snap.agent_session_id = event.session_id or snap.agent_session_id
            case ev.RateLimit():
                snap.rate_limits[event.scope] = {
                    k: v for k, v in event.to_dict().items() if k not in ("kind", "raw", "ts")
                }
        return False


def stdlib_dumps(record: Any, option: int = 0) -> bytes:
    """`orjson.dumps(record, option=OPT_APPEND_NEWLINE)` by the stdlib, which raises MemoryError
    where orjson would crash the process (LONG_LINE_BYTES). NaN is orjson's (null: valid JSON)."""
    try:
        text = json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return _json_line(record)
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _json_line(record: Any) -> bytes:
    """`journal.json_line`, imported when needed: a reader process does without pathlib."""
    from vik_tui.engine.service.journal import json_line

    return json_line(record)


def undecodable(raw: bytes, exc: ValueError) -> ev.Error:
    preview = raw[:200].decode("utf-8", "replace")
    return ev.notice(f"undecodable output line skipped ({exc}): {preview}", UNDECODABLE)


def adapter_error(obj: Any, exc: Exception) -> list[ev.AgentEvent]:
    """The line kept whole, and the adapter's failure said, instead of losing the session."""
    return ev.mapper_failed(obj, exc, "agent")
