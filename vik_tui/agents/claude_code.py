"""Claude Code adapter: the `claude -p --output-format stream-json` command line and its mapper.

Shapes follow the real 2.1.197 captures in tests/data/reference/. Claude reports a tool's result in
a later `user` message that only carries the `tool_use_id`, so the mapper remembers each
tool_use's name; Task/Agent tool calls are sub-agents and are reported as `Subagent` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    TOKEN_KEYS,
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

SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
SYNTHETIC_MODEL = "<synthetic>"


def _api_retry(obj: dict[str, Any]) -> Error:
    """`{"type":"system","subtype":"api_retry","attempt":N,"max_retries":M,"error_status":529,...}`:
    the CLI is retrying a failed API request itself, like Codex's "Reconnecting... N/M" notices."""
    attempt, limit = as_int(obj.get("attempt")), as_int(obj.get("max_retries"))
    status, error = obj.get("error_status"), as_str(obj.get("error"))
    delay = as_float(obj.get("retry_delay_ms"))
    parts = [f"API retry {attempt if attempt is not None else '?'}/{limit if limit is not None else '?'}"]
    detail = " ".join(str(x) for x in (status, error) if x not in (None, ""))
    if detail:
        parts.append(f"({detail})")
    if delay is not None:
        parts.append(f"next in {delay / 1000:.1f}s")
    return as_vik_unknown(Error(detail=" ".join(parts), fatal=False, retry=True), obj)


def build_command(agent: AgentConfig) -> list[str]:
    """`claude --verbose --output-format stream-json [--model m] -p <args>`, as vik runs it.

    `--verbose` is required by Claude Code for stream-json with `-p`; the prompt goes on stdin.
    """
    cmd = [*agent.program, "--verbose", "--output-format", "stream-json"]
    if agent.model:
        cmd += ["--model", agent.model]
    return [*cmd, "-p", *forward_args(agent.args)]


def _tool_result_text(content: Any) -> str | None:
    """A tool_result's content as text: a plain string, or the text blocks of a list."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif (text := as_str(as_dict(block).get("text"))) is not None:
                texts.append(text)
        return "\n".join(texts)
    return compact_json(content)


def _utilization_percent(value: Any) -> float | None:
    """Claude's `utilization` is a 0..1 fraction; a value above 1 is taken as a percentage."""
    number = as_float(value)
    if number is None:
        return None
    return number * 100 if 0 <= number <= 1 else number


def _usage_counts(usage: dict[str, Any]) -> dict[str, int]:
    """A Claude `usage` object in our meaning: Claude's `input_tokens` leaves out the cached
    prompt tokens, ours (like Codex's) counts them, so they are added back."""
    fresh = _count(usage.get("input_tokens"))
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    return {
        "input": fresh + cache_read + cache_write,
        "output": _count(usage.get("output_tokens")),
        "cache_read": cache_read,
        "cache_write": cache_write,
        "reasoning": 0,
    }


def _model_usage_counts(model_usage: Any) -> dict[str, int] | None:
    """The totals of `result.modelUsage` (every model the run used, side requests included,
    which `result.usage` leaves out); None when the line has none."""
    if not isinstance(model_usage, dict) or not model_usage:
        return None
    totals = dict.fromkeys(TOKEN_KEYS, 0)
    for per_model in model_usage.values():
        counts = _usage_counts(
            {
                "input_tokens": as_dict(per_model).get("inputTokens"),
                "output_tokens": as_dict(per_model).get("outputTokens"),
                "cache_read_input_tokens": as_dict(per_model).get("cacheReadInputTokens"),
                "cache_creation_input_tokens": as_dict(per_model).get("cacheCreationInputTokens"),
            }
        )
        for key, value in counts.items():
            totals[key] += value
    return totals


def _vik_tool_call(call_id: str | None, name: str | None, phase: str, given: Any, result: Any) -> dict[str, Any]:
    """A tool call as vik writes it (`raw`, the whole line, left null: its content is ours)."""
    return {
        "kind": "tool_call",
        "call_id": call_id,
        "name": name,
        "phase": phase,
        "input": given,
        "output": result,
        "raw": None,
    }


def _count(value: Any) -> int:
    """A token count: a non-negative integer (vik's u64), else 0."""
    number = as_int(value)
    return number if number is not None and number >= 0 else 0


USAGE_KEPT = 64  # message ids whose usage is remembered (`ClaudeMapper._usage_seen`)


class ClaudeMapper:
    """Maps decoded Claude Code stream-json lines to AgentEvents, one line at a time.

    Tokens: each assistant line carries its API call's usage, reported as it arrives (so a
    run stopped before `result` keeps what it used); the `result` line then reports what its
    totals add (from `modelUsage` when present).

    Records follow vik's claude_code adapter: an assistant line is one `message` (its text
    blocks joined by a newline) then its tool calls; a tool result is a `tool_call` with no name
    and the result's content as given; a line with neither is `unknown`. Our reading (the tool's
    name and command on its result, thinking, the CLI's retry notices) rides on those records.
    """

    def __init__(self) -> None:
        # tool_use id -> (tool name, subagent name or None, input or subagent description)
        self.tools: dict[str, tuple[str, str | None, str | None]] = {}
        self.last_text: str | None = None  # the last assistant text block, to spot an equal result
        # message id -> usage already reported, for the last USAGE_KEPT messages: the lines of one
        # API call come together, so an older id is never seen again (and a session of 100,000
        # lines would otherwise keep tens of thousands of them, in the supervisor or a reader)
        self._usage_seen: dict[str, dict[str, int]] = {}
        self._unnamed = 0  # messages without an id (each one its own)
        self._reported = dict.fromkeys(TOKEN_KEYS, 0)

    def feed(self, obj: object) -> list[AgentEvent]:
        """Map one decoded JSON value. Never raises: a mapping bug keeps the line as `unknown`
        and says so in a notice naming the exception.

        The lines of nearly every run (an assistant line of text and tool calls, a user line of
        text tool results, every field of the expected type) take a fast path that makes the
        events and their records (`wire`) in one pass; `_map` reads anything else, and gives
        the same events and records for these lines too (tests/test_fast_path.py).
        """
        try:
            if type(obj) is dict:
                event_type = obj.get("type")
                found = (
                    self._fast_assistant(obj)
                    if event_type == "assistant"
                    else self._fast_user(obj)
                    if event_type == "user"
                    else None
                )
                if found is not None:
                    return found
            return self._map(obj)
        except Exception as exc:
            return mapper_failed(obj, exc, "claude_code")

    def _fast_assistant(self, obj: dict[str, Any]) -> list[AgentEvent] | None:
        """An assistant line of text blocks and tool calls (not a sub-agent's): `_assistant`'s
        events and records, or None (nothing changed) for `_map` to read it."""
        message = obj.get("message")
        if type(message) is not dict or message.get("model") == SYNTHETIC_MODEL:
            return None
        content = message.get("content")
        if type(content) is not list or not content:
            return None
        texts: list[str] = []
        for block in content:  # checked whole first: a line given back to `_map` left no trace
            if type(block) is not dict:
                return None
            block_type = block.get("type")
            if block_type == "text":
                if type(block.get("text")) is not str:
                    return None
                texts.append(block["text"])
            elif block_type == "tool_use":
                name = block.get("name")
                if (
                    type(block.get("id")) is not str
                    or type(name) is not str
                    or not name
                    or name in SUBAGENT_TOOLS
                    or type(block.get("input")) is not dict
                ):
                    return None
            else:
                return None
        usage = self._assistant_usage(message)
        events: list[AgentEvent] = []
        joined = "\n".join(texts)
        if joined:
            self.last_text = joined
            events.append(Message(text=joined, wire={"kind": "message", "text": joined, "role": "assistant"}))
        for block in content:
            if block["type"] == "tool_use":
                call_id, name, given = block["id"], block["name"], block["input"]
                command = given.get("command") if name == "Bash" else None
                if type(command) is not str:
                    command = compact_json(given)
                self.tools[call_id] = (name, None, command)
                vik = {"kind": "tool_call", "call_id": call_id, "name": name, "phase": "request"}
                vik.update(input=given, output=None, raw=None)
                call = ToolCall(call_id=call_id, name=name, status="started", input=command, vik=vik)
                call.wire = {**vik, "vik_tui_input": command, "status": "started"}
                events.append(call)
        return (events or [Unknown(raw=obj)]) + usage

    def _fast_user(self, obj: dict[str, Any]) -> list[AgentEvent] | None:
        """A user line of tool results with text content (not a sub-agent's): `_user`'s events
        and records, or None (nothing changed) for `_map` to read it."""
        message = obj.get("message")
        content = message.get("content") if type(message) is dict else None
        if type(content) is not list or not content:
            return None
        for block in content:  # checked whole first: a line given back to `_map` left no trace
            if type(block) is not dict or block.get("type") != "tool_result":
                return None
            call_id = block.get("tool_use_id")
            if type(call_id) is not str or type(block.get("content")) is not str:
                return None
            remembered = self.tools.get(call_id)
            if remembered is not None and remembered[1] is not None:
                return None
        events: list[AgentEvent] = []
        for block in content:
            result_id: str = block["tool_use_id"]
            output: str = block["content"]
            status = "failed" if block.get("is_error") is True else "completed"
            remembered = self.tools.pop(result_id, None)
            name, _subagent, detail = remembered or ("tool", None, None)
            vik = {"kind": "tool_call", "call_id": result_id, "name": None, "phase": "result"}
            vik.update(input=None, output=output, raw=None)
            wire = {**vik, "vik_tui_name": name}
            if detail is not None:
                wire["vik_tui_input"] = detail
            wire["status"] = status
            call = ToolCall(call_id=result_id, name=name, status=status, input=detail, output=output, vik=vik)
            call.wire = wire
            events.append(call)
        return events

    def _map(self, obj: object) -> list[AgentEvent]:
        if not isinstance(obj, dict):
            return [Unknown(raw=obj)]
        event_type = as_str(obj.get("type"))
        if event_type == "system" and obj.get("subtype") == "init":
            session_id = as_str(obj.get("session_id"))
            if not session_id:
                return [Unknown(raw=obj)]
            return [SessionStarted(session_id=session_id, model=as_str(obj.get("model")), cwd=as_str(obj.get("cwd")))]
        if event_type == "system" and obj.get("subtype") == "api_retry":
            return [_api_retry(obj)]
        if event_type == "assistant":
            if as_dict(obj.get("message")).get("model") == SYNTHETIC_MODEL:
                return self._synthetic(obj)
            return self._assistant(obj)
        if event_type == "user":
            return self._user(obj)
        if event_type == "result":
            return self._result(obj)
        if event_type == "rate_limit_event":
            return self._rate_limit(obj) or [Unknown(raw=obj)]
        return [Unknown(raw=obj)]

    @staticmethod
    def _synthetic(obj: dict[str, Any]) -> list[AgentEvent]:
        """A message the CLI wrote itself (`"model": "<synthetic>"`, e.g. "API Error: 529 …"): a
        notice from the CLI, not something the model said, so it is never the agent's last word.
        Not fatal on its own: the `result` line that follows decides the outcome."""
        content = as_dict(obj.get("message")).get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        texts = [text for b in blocks if (text := as_str(as_dict(b).get("text"))) is not None]
        notice = Error(detail="\n".join(texts) or "the CLI reported an error", fatal=False)
        if isinstance(content, list) and texts:  # vik reads it as the model's message
            notice.vik = {"kind": "message", "text": "\n".join(texts)}
        else:
            as_vik_unknown(notice, obj)
        return [notice]

    def _assistant(self, obj: dict[str, Any]) -> list[AgentEvent]:
        message = as_dict(obj.get("message"))
        content = message.get("content")
        usage = self._assistant_usage(message)
        if isinstance(content, str):  # vik reads no blocks in it: `unknown`
            self.last_text = content
            return [as_vik_unknown(Message(text=content), obj), *usage]
        if not isinstance(content, list):
            return [Unknown(raw=obj), *usage]
        texts: list[str] = []
        tools: list[AgentEvent] = []
        thinking: list[AgentEvent] = []
        for block in content:
            block_dict = as_dict(block)
            block_type = as_str(block_dict.get("type"))
            if block_type == "text" and (text := as_str(block_dict.get("text"))) is not None:
                texts.append(text)
            elif block_type == "thinking" and (text := as_str(block_dict.get("thinking"))) is not None:
                thinking.append(as_vik_unknown(Message(text=text, role="reasoning"), obj))
            elif block_type == "tool_use":
                tools.append(self._tool_use(block_dict))
        # thinking first, as it was said; vik ignores it (an `unknown` record, the line's own when alone)
        events: list[AgentEvent] = thinking
        joined = "\n".join(texts)
        if joined:
            self.last_text = joined
            events.append(Message(text=joined))
        events += tools
        return (events or [Unknown(raw=obj)]) + usage

    def _assistant_usage(self, message: dict[str, Any]) -> list[AgentEvent]:
        """What this line's usage adds to what its message already reported (every content
        block of one API call repeats the call's usage, and streaming may raise it)."""
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return []
        counts = _usage_counts(usage)
        key = as_str(message.get("id"))
        if key is None:
            self._unnamed += 1
            key = f"#{self._unnamed}"
        seen = self._usage_seen.get(key)
        delta = {k: max(0, v - seen[k]) for k, v in counts.items()} if seen else counts
        self._usage_seen[key] = {k: max(v, seen[k]) for k, v in counts.items()} if seen else counts
        if len(self._usage_seen) > USAGE_KEPT:
            del self._usage_seen[next(iter(self._usage_seen))]
        return self._report(delta) if any(delta.values()) else []

    def _report(self, delta: dict[str, int]) -> list[AgentEvent]:
        for key, value in delta.items():
            self._reported[key] += value
        return [
            TokenUsage(
                input=delta["input"],
                output=delta["output"],
                cache_read=delta["cache_read"],
                cache_write=delta["cache_write"],
                reasoning=delta["reasoning"],
            )
        ]

    def _tool_use(self, block: dict[str, Any]) -> AgentEvent:
        call_id = as_str(block.get("id"))
        name = as_str(block.get("name")) or "tool"
        tool_input = block.get("input")
        input_dict = as_dict(tool_input)
        if name in SUBAGENT_TOOLS:
            subagent = as_str(input_dict.get("subagent_type")) or name
            description = as_str(input_dict.get("description"))
            if call_id is not None:
                self.tools[call_id] = (name, subagent, description)
            vik: dict[str, Any] = {"kind": "subagent", "call_id": call_id, "action": name, "status": None}
            vik.update(target_ids=[], raw=None)
            return Subagent(
                call_id=call_id, action=name, name=subagent, status="started", description=description, vik=vik
            )
        command = as_str(input_dict.get("command")) if name == "Bash" else None
        if command is None:
            command = None if tool_input is None else compact_json(tool_input)
        if call_id is not None:
            self.tools[call_id] = (name, None, command)
        vik = _vik_tool_call(call_id, as_str(block.get("name")), "request", tool_input, None)
        return ToolCall(call_id=call_id, name=name, status="started", input=command, vik=vik)

    def _user(self, obj: dict[str, Any]) -> list[AgentEvent]:
        content = as_dict(obj.get("message")).get("content")
        if isinstance(content, str):  # vik: no tool result, so `unknown`
            return [as_vik_unknown(Message(text=content, role="user"), obj)]
        if not isinstance(content, list):
            return [Unknown(raw=obj)]
        results: list[AgentEvent] = []
        texts: list[AgentEvent] = []
        for block in content:
            block_dict = as_dict(block)
            block_type = as_str(block_dict.get("type"))
            if block_type == "tool_result":
                results.append(self._tool_result(block_dict))
            elif block_type == "text" and (text := as_str(block_dict.get("text"))) is not None:
                texts.append(as_vik_unknown(Message(text=text, role="user"), obj))
        return (results + texts) or [Unknown(raw=obj)]

    def _tool_result(self, block: dict[str, Any]) -> AgentEvent:
        call_id = as_str(block.get("tool_use_id"))
        status = "failed" if block.get("is_error") is True else "completed"
        remembered = self.tools.pop(call_id, None) if call_id is not None else None
        name, subagent, detail = remembered or ("tool", None, None)
        vik = _vik_tool_call(call_id, None, "result", None, block.get("content"))  # vik names no result
        if subagent is not None:
            return Subagent(call_id=call_id, action=name, name=subagent, status=status, description=detail, vik=vik)
        output = _tool_result_text(block.get("content"))
        return ToolCall(call_id=call_id, name=name, status=status, input=detail, output=output, vik=vik)

    def _result(self, obj: dict[str, Any]) -> list[AgentEvent]:
        """Usage totals and the end of the run: `completed`, or a fatal `error` when Claude
        says the run failed (`is_error`; the subtype can say "success" while is_error is true,
        as when not logged in: is_error wins)."""
        totals = _model_usage_counts(obj.get("modelUsage")) or _usage_counts(as_dict(obj.get("usage")))
        reported = self._reported
        tokens = self._report({key: max(0, value - reported[key]) for key, value in totals.items()})
        is_error = obj.get("is_error")
        subtype = as_str(obj.get("subtype")) or "success"
        success = not is_error if isinstance(is_error, bool) else subtype == "success"
        result = as_str(obj.get("result"))
        if result is None:
            errors = [text for e in as_list(obj.get("errors")) if (text := as_str(e)) is not None]
            result = "\n".join(errors) or None
        if not success:
            return [*tokens, Error(detail=result or f"the run ended with {subtype}", fatal=True)]
        return [*tokens, Completed(result=None if result == self.last_text else result)]

    @staticmethod
    def _rate_limit(obj: dict[str, Any]) -> list[AgentEvent]:
        """`{"type":"rate_limit_event","rate_limit_info":{...}}` to one RateLimit per window.

        Claude Code (2.1.45+) sends `status` (allowed / allowed_warning / rejected), `resetsAt`
        (epoch seconds), `rateLimitType` (five_hour, seven_day, ...), overage fields and, in
        some versions, `utilization` (0..1) or `unifiedWindows: {name: {utilization,
        resetsAt}}`. A `rejected` window with no figure is reported as 100 % used.
        """
        info = as_dict(obj.get("rate_limit_info"))
        windows = as_dict(info.get("unifiedWindows"))
        events: list[AgentEvent] = []
        for name, window in windows.items():
            window_dict = as_dict(window)
            if not window_dict:
                continue
            events.append(
                RateLimit.observed(
                    f"claude.{name}",
                    _utilization_percent(window_dict.get("utilization")),
                    epoch_to_iso(window_dict.get("resetsAt")),
                    obj,
                )
            )
        if events:
            return events
        if not info:
            return []
        used = _utilization_percent(info.get("utilization"))
        if used is None and info.get("status") == "rejected":
            used = 100.0
        scope = as_str(info.get("rateLimitType")) or "default"
        return [RateLimit.observed(f"claude.{scope}", used, epoch_to_iso(info.get("resetsAt")), obj)]
