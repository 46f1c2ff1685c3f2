"""Codex CLI adapter: the `codex exec --json` command line and a mapper for its JSONL stream.

Event shapes follow codex-rs/exec/src/exec_events.rs (`ThreadEvent`, `ThreadItemDetails`) and
the real 0.169.0 captures in tests/data/reference/. Codex changes quickly, so the mapper reads every
field defensively and keeps anything it does not understand as an `Unknown` event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from vik_tui.agents.args import (
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    compact_json,
    epoch_to_iso,
    forward_args,
)
from vik_tui.agents.events import (
    AgentEvent,
    Completed,
    Error,
    Message,
    RateLimit,
    SessionStarted,
    Subagent,
    TokenUsage,
    ToolCall,
    Unknown,
    as_vik_unknown,
    mapper_failed,
)

if TYPE_CHECKING:  # a reader process imports the mappers without pydantic (`stages.offload`)
    from vik_tui.config.schema import AgentConfig

ITEM_EVENTS = frozenset({"item.started", "item.updated", "item.completed"})
_FAILED = frozenset({"failed", "declined", "errored", "error", "cancelled", "canceled"})
_DONE = frozenset({"completed", "succeeded", "success", "done"})
_RUNNING = frozenset({"in_progress", "pending", "running", "started", "pending_init"})
RETRY_NOTICE = "Reconnecting"  # "Reconnecting... 2/5 (...)": the CLI retrying the API itself
# an item's own `status` to ours, in one lookup (the sets above are disjoint)
_STATUS = {
    **dict.fromkeys(_FAILED, "failed"),
    **dict.fromkeys(_DONE, "completed"),
    **dict.fromkeys(_RUNNING, "started"),
}
_TEXT_ITEMS = frozenset({"agent_message", "assistant_message", "reasoning"})
VIK_COLLAB = "collab_tool_call"  # the one delegation item vik models (its `subagent`)


def build_command(agent: AgentConfig) -> list[str]:
    """`codex exec <args> --json [-m model]`, the order vik uses; the prompt goes on stdin."""
    cmd = [*agent.program, "exec", *forward_args(agent.args), "--json"]
    if agent.model:
        cmd += ["-m", agent.model]
    return cmd


def _count(value: Any) -> int:
    """A token count: a non-negative integer (vik's u64), else 0."""
    number = as_int(value)
    return number if number is not None and number >= 0 else 0


def _status(item: dict[str, Any], event_type: str) -> str:
    """started/completed/failed from an item's `status`, else from which item.* event it is."""
    status = item.get("status")
    mapped = _STATUS.get(status) if isinstance(status, str) else None
    if mapped is not None:
        return mapped
    return "completed" if event_type == "item.completed" else "started"


def _mcp_output(item: dict[str, Any]) -> str | None:
    """An MCP call's result as text: its text blocks, else structured content, else the error."""
    error = item.get("error")
    if isinstance(error, dict) and as_str(error.get("message")) is not None:
        return as_str(error.get("message"))
    if isinstance(error, str):
        return error
    result = item.get("result")
    if result is None:
        return None
    if isinstance(result, str):
        return result
    result_dict = as_dict(result)
    texts = [
        text
        for block in as_list(result_dict.get("content"))
        if (text := as_str(as_dict(block).get("text"))) is not None
    ]
    if texts:
        return "\n".join(texts)
    structured = result_dict.get("structured_content")
    if structured is not None:
        return compact_json(structured)
    return compact_json(result)


def _todo_text(item: dict[str, Any]) -> str:
    """A to-do list as checklist lines, so the plan reads the same as in Codex's own UI."""
    lines = []
    for entry in as_list(item.get("items")):
        entry_dict = as_dict(entry)
        text = as_str(entry_dict.get("text"))
        if text is None:
            text = entry if isinstance(entry, str) else compact_json(entry)
        mark = "x" if entry_dict.get("completed") is True else " "
        lines.append(f"[{mark}] {text}")
    return "\n".join(lines)


def _is_collab(item_type: str) -> bool:
    """Item types that delegate to another agent thread (collab_tool_call and relatives)."""
    lowered = item_type.lower()
    return "collab" in lowered or "subagent" in lowered or "spawn_agent" in lowered


def _vik_tool_call(call_id: str | None, name: str | None, request: bool, given: Any, result: Any) -> dict[str, Any]:
    """A tool call as vik writes it: `input` on the request, `output` on the result, as JSON
    objects (`raw`, the whole line, is left null: the line's content is in our fields)."""
    return {
        "kind": "tool_call",
        "call_id": call_id,
        "name": name,
        "phase": "request" if request else "result",
        "input": given if request else None,
        "output": None if request else result,
        "raw": None,
    }


def _reset_time(window: dict[str, Any]) -> str | None:
    """A window's reset as ISO time: absolute `resets_at`, else now + `resets_in_seconds`."""
    absolute = window.get("resets_at", window.get("resetsAt"))
    if absolute is not None:
        return epoch_to_iso(absolute)
    relative = as_float(window.get("resets_in_seconds", window.get("reset_after_seconds")))
    if relative is None:
        return None
    try:
        when = datetime.now(tz=UTC) + timedelta(seconds=relative)
    except OverflowError:
        return None
    return when.isoformat().replace("+00:00", "Z")


def rate_limits_from_snapshot(snapshot: Any, raw: dict[str, Any]) -> list[AgentEvent]:
    """One RateLimit per window of a Codex `RateLimitSnapshot` (`primary`, `secondary`).

    Codex reports `{"primary": {"used_percent", "window_minutes", "resets_at"}, "secondary":
    {...}, "limit_id"?, "plan_type"?}` (app-server spells them camelCase). The scope is
    `codex.<window>`, prefixed by a non-default `limit_id` so per-model limits stay apart.
    """
    snap = as_dict(snapshot)
    limit_id = as_str(snap.get("limit_id", snap.get("limitId")))
    prefix = "codex" if limit_id in (None, "", "codex") else f"codex.{limit_id}"
    events: list[AgentEvent] = []
    for name in ("primary", "secondary"):
        window = snap.get(name)
        if not isinstance(window, dict) or not window:
            continue
        used = as_float(window.get("used_percent", window.get("usedPercent")))
        events.append(RateLimit.observed(f"{prefix}.{name}", used, _reset_time(window), raw))
    return events


class CodexMapper:
    """Maps decoded `codex exec --json` lines to AgentEvents, one line at a time (stateless).

    Codex's completion carries no text of its own (its answer is the last agent message), so
    `Completed.result` stays empty and a large answer is stored once.

    Every line is written as vik's codex adapter writes it (vik `src/agent/adapters/codex`):
    a shell call is its `command_execution` tool call with the item object as input (request)
    and output (result), an MCP call is named by its tool with its arguments and result as
    JSON; `item.updated`, `turn.started`, a started agent message and every item type vik does
    not model (reasoning, to-do list, file change, web search, ...) are `unknown`. Our reading
    (a `shell` call with its command, the reasoning text, the plan) rides on the same record.
    """

    # item type -> its fast path (set below the class)
    FAST_PATH: ClassVar[dict[str, Callable[[dict[str, Any], dict[str, Any], bool], list[AgentEvent] | None]]]

    def feed(self, obj: object) -> list[AgentEvent]:
        """Map one decoded JSON value. Never raises: a mapping bug keeps the line as `unknown`
        and says so in a notice naming the exception.

        The lines of nearly every run (a started or completed command, a completed message or
        reasoning item, with every field of the expected type) take a fast path that makes
        the events and their records (`wire`) in one pass; `_map` reads anything else, and
        gives the same events and records for these lines too (tests/test_adapters_property.py).
        """
        try:
            if type(obj) is dict:
                item = obj.get("item")
                if type(item) is dict:
                    item_type = item.get("type")
                    fast = self.FAST_PATH.get(item_type) if type(item_type) is str else None
                    if fast is not None:
                        event_type = obj.get("type")
                        if event_type == "item.completed" or event_type == "item.started":
                            found = fast(obj, item, event_type == "item.completed")
                            if found is not None:
                                return found
            return self._map(obj)
        except Exception as exc:
            return mapper_failed(obj, exc, "codex")

    def _map(self, obj: object) -> list[AgentEvent]:
        # The hot path (every stdout line): item.* events, the bulk of a run, are tested first,
        # with inline type checks rather than the `as_*` helpers.
        if not isinstance(obj, dict):
            return [Unknown(raw=obj)]
        event_type = obj.get("type")
        if not isinstance(event_type, str):
            event_type = ""
        elif event_type in ITEM_EVENTS:
            return self._item(obj, event_type)
        if event_type == "thread.started":
            thread_id = as_str(obj.get("thread_id"))
            return [SessionStarted(session_id=thread_id)] if thread_id else [Unknown(raw=obj)]
        if event_type == "turn.started":
            return [Unknown(raw=obj)]  # as vik keeps it
        if event_type == "turn.completed":
            return self._turn_completed(obj)
        if event_type == "turn.failed":
            message = as_str(as_dict(obj.get("error")).get("message")) or as_str(obj.get("error"))
            return [Error(detail=message or "turn failed", fatal=True)]
        if event_type == "error":
            # Transient notices ("Reconnecting... 2/5"): the turn goes on until turn.* says otherwise.
            message = as_str(obj.get("message"))
            if message is None:
                return [Error(detail=compact_json(obj), fatal=False)]
            return [Error(detail=message, fatal=False, retry=True if message.startswith(RETRY_NOTICE) else None)]
        limits = self._rate_limits(obj, event_type)
        if limits:
            return limits
        return [Unknown(raw=obj)]

    def _item(self, obj: dict[str, Any], event_type: str) -> list[AgentEvent]:
        if event_type == "item.updated":  # vik keeps every update as `unknown`
            return [as_vik_unknown(event, obj) for event in self._read_item(obj, event_type)] or [Unknown(raw=obj)]
        return self._read_item(obj, event_type)

    def _read_item(self, obj: dict[str, Any], event_type: str) -> list[AgentEvent]:
        item = obj.get("item")
        if not isinstance(item, dict):
            item = {}
        item_type = item.get("type")
        if not isinstance(item_type, str) or not item_type:
            item_type = item.get("item_type")
            if not isinstance(item_type, str):
                item_type = ""
        done = event_type == "item.completed"

        if item_type == "command_execution":
            status = item.get("status")
            status = _STATUS.get(status) if isinstance(status, str) else None
            if status is None:
                status = "completed" if done else "started"
            exit_code = item.get("exit_code")
            if exit_code is not None and type(exit_code) is not int:  # bools and floats: the careful reader
                exit_code = as_int(exit_code)
            if exit_code is not None and exit_code != 0:
                status = "failed"
            item_id = item.get("id")
            command = item.get("command")
            output = item.get("aggregated_output")
            if not isinstance(output, str):
                output = None
            call_id = item_id if isinstance(item_id, str) else None
            return [
                ToolCall(
                    call_id=call_id,
                    name="shell",
                    status=status,
                    input=command if isinstance(command, str) else None,
                    output=output if output or status != "started" else None,
                    exit_code=exit_code,
                    vik=_vik_tool_call(call_id, "command_execution", not done, item, item),
                )
            ]
        if item_type in _TEXT_ITEMS:
            # Codex sends the text whole on item.completed; started/updated would only duplicate it.
            text = item.get("text")
            if not isinstance(text, str) or not done:
                return [Unknown(raw=obj)]  # vik's reading of a started message too
            if item_type == "reasoning":
                return [as_vik_unknown(Message(text=text, role="reasoning"), obj)]
            if item_type != "agent_message":
                return [as_vik_unknown(Message(text=text), obj)]
            return [Message(text=text)]
        item_id = as_str(item.get("id"))
        status = _status(item, event_type)
        if item_type == "plan":
            text = as_str(item.get("text"))
            return [as_vik_unknown(Message(text=text, role="plan"), obj)] if text is not None else [Unknown(raw=obj)]
        if item_type == "mcp_tool_call":
            server = as_str(item.get("server")) or "mcp"
            tool = as_str(item.get("tool")) or "tool"
            arguments = item.get("arguments")
            if isinstance(item.get("error"), dict | str) and item.get("error"):
                status = "failed"
            result = item.get("result")
            outcome = item.get("error") if result is None else result  # vik: `result.or(error)`
            return [
                ToolCall(
                    call_id=item_id,
                    name=f"{server}.{tool}",
                    status=status,
                    input=None if arguments is None else compact_json(arguments),
                    output=_mcp_output(item),
                    vik=_vik_tool_call(item_id, as_str(item.get("tool")), not done, arguments, outcome),
                )
            ]
        if item_type == "file_change":
            changes = []
            for change in as_list(item.get("changes")):
                change_dict = as_dict(change)
                kind = as_str(change_dict.get("kind")) or as_str(as_dict(change_dict.get("kind")).get("type"))
                path = as_str(change_dict.get("path"))
                if path is not None:
                    changes.append(f"{kind or 'update'} {path}")
            edit = ToolCall(call_id=item_id, name="edit", status=status, input=", ".join(changes))
            return [as_vik_unknown(edit, obj)]
        if item_type == "web_search":
            search = ToolCall(call_id=item_id, name="web_search", status=status, input=as_str(item.get("query")))
            return [as_vik_unknown(search, obj)]
        if item_type == "todo_list":
            return [as_vik_unknown(Message(text=_todo_text(item), role="plan"), obj)]
        if item_type == "error":
            message = as_str(item.get("message"))
            notice = Error(detail=message if message is not None else compact_json(item), fatal=False)
            return [as_vik_unknown(notice, obj)]
        if _is_collab(item_type):
            tool = as_str(item.get("tool")) or item_type
            prompt = as_str(item.get("prompt"))
            targets = [t for t in as_list(item.get("receiver_thread_ids")) if isinstance(t, str)]
            subagent = Subagent(
                call_id=item_id, action=tool, status=status, target_ids=targets, name=tool, description=prompt
            )
            if item_type != VIK_COLLAB:
                return [as_vik_unknown(subagent, obj)]
            vik_status = item.get("status")
            subagent.vik = {
                "kind": "subagent",
                "call_id": item_id,
                "action": as_str(item.get("tool")) or "unknown",
                "status": vik_status if isinstance(vik_status, str) else None,
                "target_ids": targets,
                "raw": None,
            }
            return [subagent]
        return [Unknown(raw=obj)]

    def _turn_completed(self, obj: dict[str, Any]) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        usage = obj.get("usage")
        if isinstance(usage, dict):
            # Codex's `input_tokens` already counts the cached ones: our meaning of `input`
            events.append(
                TokenUsage(
                    input=_count(usage.get("input_tokens")),
                    output=_count(usage.get("output_tokens")),
                    cache_read=_count(usage.get("cached_input_tokens")),
                    cache_write=_count(usage.get("cache_write_input_tokens")),
                    reasoning=_count(usage.get("reasoning_output_tokens")),
                )
            )
        events.append(Completed())
        return events

    @staticmethod
    def _rate_limits(obj: dict[str, Any], event_type: str) -> list[AgentEvent]:
        """Rate limits, wherever this Codex build puts them.

        Upstream `codex exec --json` (through at least 0.169) prints none: the protocol's
        `token_count` event carries `rate_limits`, but the JSONL processor drops it (see
        openai/codex#14728). Builds and forks that do forward it use a `token_count` line, an
        `event_msg` wrapper like the rollout files, or a `*rate_limits*` event; accept all.
        """
        payload = obj
        if event_type == "event_msg":
            payload = as_dict(obj.get("payload"))
            event_type = as_str(payload.get("type")) or ""
        normalized = event_type.lower().replace("ratelimits", "rate_limits")
        if event_type != "token_count" and "rate_limit" not in normalized:
            return []
        snapshot = payload.get("rate_limits", payload.get("rateLimits"))
        if snapshot is None and ("primary" in payload or "secondary" in payload):
            snapshot = payload
        return rate_limits_from_snapshot(snapshot, obj)


# -- the fast path: the frequent lines, events and records made in one pass ----------------------
# Each returns None for a line it does not take (a field of another type, a started message):
# `_map` then reads it. What each builds is exactly what `_map` and `to_dict()` give.


def _fast_message(obj: dict[str, Any], item: dict[str, Any], done: bool) -> list[AgentEvent] | None:
    """A completed agent message: our `message`, which is also vik's record."""
    text = item.get("text")
    if not done or type(text) is not str:
        return None
    return [Message(text=text, wire={"kind": "message", "text": text, "role": "assistant"})]


def _fast_reasoning(obj: dict[str, Any], item: dict[str, Any], done: bool) -> list[AgentEvent] | None:
    """A completed reasoning item: vik's `unknown` with the line, our reasoning message after it."""
    text = item.get("text")
    if not done or type(text) is not str:
        return None
    vik = {"kind": "unknown", "event_type": "item.completed", "raw": obj}
    wire = {**vik, "vik_tui_kind": "message", "text": text, "role": "reasoning"}
    return [Message(text=text, role="reasoning", vik=vik, wire=wire)]


def _fast_command(obj: dict[str, Any], item: dict[str, Any], done: bool) -> list[AgentEvent] | None:
    """A started or completed shell command: vik's `command_execution` tool call holding the
    item, our `shell` call with its command and output after it."""
    item_id = item.get("id")
    command = item.get("command")
    output = item.get("aggregated_output")
    exit_code = item.get("exit_code")
    given = item.get("status")
    if (
        type(item_id) is not str
        or type(command) is not str
        or type(output) is not str
        or type(given) is not str
        or (exit_code is not None and type(exit_code) is not int)
    ):
        return None
    status = _STATUS.get(given) or ("completed" if done else "started")
    if exit_code is not None and exit_code != 0:
        status = "failed"
    ours = output if output or status != "started" else None
    vik: dict[str, Any] = {
        "kind": "tool_call",
        "call_id": item_id,
        "name": "command_execution",
        "phase": "result" if done else "request",
        "input": None if done else item,
        "output": item if done else None,
        "raw": None,
    }
    wire = {**vik, "vik_tui_name": "shell", "vik_tui_input": command}
    # vik's `output` (the item) holds ours when ours is the item's output; a request has none
    if (ours is None) if done else (ours is not None):
        wire["vik_tui_output"] = ours
    wire["status"] = status
    if exit_code is not None:
        wire["exit_code"] = exit_code
    event = ToolCall(
        call_id=item_id, name="shell", status=status, input=command, output=ours, exit_code=exit_code, vik=vik
    )
    event.wire = wire
    return [event]


CodexMapper.FAST_PATH = {
    "command_execution": _fast_command,
    "agent_message": _fast_message,
    "reasoning": _fast_reasoning,
}
