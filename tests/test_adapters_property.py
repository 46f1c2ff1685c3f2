"""Property tests: no JSON value, however odd, makes a mapper raise or emit unserialisable events.

CLI output changes between releases, so the mappers must survive any JSON — including lines
shaped like real events whose fields have the wrong types. The tests call the unguarded
`_map` so that the `feed` safety net cannot hide a mapping bug.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import KINDS, AgentEvent

# Where the bugs hide is the event-shaped lines (right keys, wrong types): they keep most examples.
# An arbitrary JSON value rarely carries a known `type`, so past a hundred it mostly retests the
# "unknown line" path; `feed` only adds a safety net over the same shaped lines.
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=100)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def shaped(required: dict[str, Any], optional_keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with the given fixed fields and any of `optional_keys` holding arbitrary JSON."""
    return st.fixed_dictionaries(required, optional={k: json_values for k in optional_keys})


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the realistic value, sometimes any JSON value in its place."""
    return strategy | json_values


# --- codex-shaped lines --------------------------------------------------------------------

CODEX_ITEM_TYPES = [
    "agent_message", "reasoning", "plan", "command_execution", "mcp_tool_call", "collab_tool_call",
    "file_change", "web_search", "todo_list", "error", "something_new",
]  # fmt: skip
STATUSES = st.sampled_from(["in_progress", "completed", "failed", "declined", "weird"])
texts = st.text(max_size=12)

windows = shaped({}, ["used_percent", "usedPercent", "window_minutes", "resets_at", "resetsAt", "resets_in_seconds"])
snapshots = shaped({"primary": maybe(windows), "secondary": maybe(windows)}, ["limit_id", "limitId", "plan_type"])

# Realistic field values, each sometimes replaced by any JSON value.
codex_item_fields = {
    "id": maybe(texts),
    "text": maybe(texts),
    "command": maybe(texts),
    "aggregated_output": maybe(texts),
    "exit_code": maybe(st.none() | st.integers(-2, 2)),
    "status": maybe(STATUSES),
    "server": maybe(texts),
    "tool": maybe(texts),
    "arguments": json_values,
    "result": maybe(st.fixed_dictionaries(
        {"content": maybe(st.lists(maybe(st.fixed_dictionaries({"type": st.just("text"), "text": maybe(texts)}))))},
        optional={"structured_content": json_values},
    )),
    "error": maybe(st.fixed_dictionaries({"message": maybe(texts)})),
    "changes": maybe(st.lists(maybe(st.fixed_dictionaries(
        {"path": maybe(texts), "kind": maybe(st.sampled_from(["add", "update", "delete"]))})))),
    "query": maybe(texts),
    "items": maybe(st.lists(maybe(st.fixed_dictionaries({"text": maybe(texts), "completed": maybe(st.booleans())})))),
    "message": maybe(texts),
    "prompt": maybe(texts),
}  # fmt: skip
codex_items = st.fixed_dictionaries({"type": st.sampled_from(CODEX_ITEM_TYPES)}, optional=codex_item_fields)
item_lines = st.fixed_dictionaries(
    {"type": st.sampled_from(["item.started", "item.updated", "item.completed"]), "item": maybe(codex_items)}
)
codex_lines = st.one_of(
    item_lines,
    item_lines,
    item_lines,
    shaped({"type": st.just("thread.started")}, ["thread_id"]),
    shaped({"type": st.sampled_from(["turn.started", "turn.completed", "turn.failed", "error"])},
           ["usage", "error", "message"]),
    shaped({"type": st.just("turn.completed"), "usage": maybe(shaped({}, [
        "input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens", "reasoning_output_tokens",
    ]))}, []),
    shaped({"type": st.sampled_from(["token_count", "rate_limits.updated"]), "rate_limits": maybe(snapshots)}, []),
    shaped({"type": st.just("event_msg"), "payload": maybe(
        shaped({"type": st.just("token_count"), "rate_limits": maybe(snapshots)}, ["info"]))}, []),
    json_values,
)  # fmt: skip

# --- claude-shaped lines -------------------------------------------------------------------

CLAUDE_BLOCK_TYPES = ["text", "thinking", "tool_use", "tool_result", "image", "server_tool_use"]
claude_blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(CLAUDE_BLOCK_TYPES)},
    optional={
        "text": maybe(texts),
        "thinking": maybe(texts),
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": json_values,
        "content": json_values,
        "is_error": json_values,
    },
)
claude_tool_use = st.fixed_dictionaries({
    "type": st.just("tool_use"),
    "id": maybe(st.sampled_from(["t1", "t2"])),
    "name": maybe(st.sampled_from(["Bash", "Task", "Agent", "Read"])),
    "input": maybe(shaped({}, ["command", "subagent_type", "description", "prompt"])),
})  # fmt: skip
text_blocks = st.fixed_dictionaries({"type": st.just("text"), "text": maybe(texts)})
claude_tool_result = st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": maybe(st.sampled_from(["t1", "t2"]))},
    optional={
        "content": maybe(texts | st.lists(maybe(text_blocks))),
        "is_error": maybe(st.booleans()),
    },
)
claude_text = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "thinking"]), "text": maybe(texts), "thinking": maybe(texts)}
)
any_block = st.one_of(
    claude_blocks, claude_text, claude_tool_use, claude_tool_use, claude_tool_result, claude_tool_result
)
messages = shaped({"content": maybe(st.lists(any_block, min_size=1, max_size=4))}, ["role", "model"])
rate_info = shaped({}, ["status", "resetsAt", "rateLimitType", "utilization", "unifiedWindows", "isUsingOverage"])
chat_lines = shaped({"type": st.sampled_from(["assistant", "user"]), "message": maybe(messages)}, ["error"])
claude_lines = st.one_of(
    chat_lines,
    chat_lines,
    chat_lines,
    shaped({"type": st.just("system"), "subtype": maybe(st.sampled_from(["init", "hook_response"]))},
           ["session_id", "model", "cwd"]),
    shaped({"type": st.just("result")}, ["subtype", "is_error", "result", "usage", "errors"]),
    shaped({"type": st.just("rate_limit_event"), "rate_limit_info": maybe(rate_info)}, []),
    json_values,
)  # fmt: skip


def check(events: object) -> None:
    """A list of known AgentEvents whose dicts serialise as JSON."""
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, AgentEvent)
        assert KINDS[event.kind] is type(event)
        json.dumps(event.to_dict())


@FEW
@given(json_values)
def test_codex_any_json_value(obj: Any) -> None:
    check(CodexMapper()._map(obj))


@FEW
@given(json_values)
def test_claude_any_json_value(obj: Any) -> None:
    check(ClaudeMapper()._map(obj))


@SETTINGS
@given(st.lists(codex_lines, max_size=6))
def test_codex_event_shaped_lines(lines: list[Any]) -> None:
    mapper = CodexMapper()
    for line in lines:
        check(mapper._map(line))


@SETTINGS
@given(st.lists(claude_lines, max_size=6))
def test_claude_event_shaped_lines(lines: list[Any]) -> None:
    mapper = ClaudeMapper()
    for line in lines:
        check(mapper._map(line))


@FEW
@given(st.lists(codex_lines | claude_lines, max_size=4))
def test_feed_never_raises_for_either_mapper(lines: list[Any]) -> None:
    codex, claude = CodexMapper(), ClaudeMapper()
    for line in lines:
        check(codex.feed(line))
        check(claude.feed(line))
