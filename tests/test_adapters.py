"""Runtime adapters: command lines (vik-compatible) and mapping of real CLI output to events.

The reference captures are the unedited stdout of real Codex / Claude Code runs; each must map
to exactly the events (and so the outcome) described in tests/data/reference/README.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vik_tui.agents import claude_code, codex
from vik_tui.agents.args import epoch_to_iso, forward_args
from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent, Completed, Error, RateLimit, TokenUsage, utc_time
from vik_tui.agents.registry import RUNTIME_ADAPTERS, RuntimeAdapter, adapter_for
from vik_tui.config.schema import AgentConfig

LOCAL_REFERENCE = Path(__file__).resolve().parent / "data" / "reference"
SHARED_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def reference_file(name: str) -> Path:
    """The in-repo copy first (works in any checkout), else shared/ beside the checkout."""
    for directory in (LOCAL_REFERENCE, SHARED_REFERENCE):
        if (directory / name).is_file():
            return directory / name
    pytest.skip(f"reference capture {name} not found")


def all_reference_names() -> list[str]:
    names: set[str] = set()
    for directory in (LOCAL_REFERENCE, SHARED_REFERENCE):
        if directory.is_dir():
            names.update(p.name for p in directory.glob("*.jsonl"))
    return sorted(names)


def mapper_for(name: str) -> CodexMapper | ClaudeMapper:
    return CodexMapper() if name.startswith("codex") else ClaudeMapper()


def run_capture(name: str) -> list[AgentEvent]:
    mapper = mapper_for(name)
    events: list[AgentEvent] = []
    for line in reference_file(name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            events += mapper.feed(json.loads(line))
    return events


def dicts(events: list[AgentEvent]) -> list[dict[str, Any]]:
    """Our reading of each event (how vik writes the same line is tests/test_vik_differential's)."""
    return [replace(e, vik=None).to_dict() for e in events]


# --- args forwarding ----------------------------------------------------------------------


def test_forward_args_matches_vik() -> None:
    """Keys as written (vik adds no dashes); only string list items; mappings dropped."""
    args = {
        "--sandbox": "workspace-write",
        "--max-turns": 5,
        "--temperature": 0.5,
        "--full-auto": True,
        "--quiet": False,
        "--skip": None,
        "--allowedTools": ["Bash", "Read"],
        "-c": "model_reasoning_effort=high",
        "resume": "x",
        "--config": {"a": 1},
    }
    assert forward_args(args) == [
        "--sandbox", "workspace-write",
        "--max-turns", "5",
        "--temperature", "0.5",
        "--full-auto",
        "--allowedTools", "Bash,Read",
        "-c", "model_reasoning_effort=high",
        "resume", "x",
    ]  # fmt: skip


def test_forward_args_list_items_and_empty() -> None:
    assert forward_args({}) == []
    assert forward_args({"--ids": [1, 2.5, "x"]}) == ["--ids", "x"]
    assert forward_args({"--flags": [True, False]}) == ["--flags", ""]
    assert forward_args({"--empty": []}) == ["--empty", ""]
    assert forward_args({"--zero": 0, "--one": 1.0}) == ["--zero", "0", "--one", "1.0"]


# --- command lines ------------------------------------------------------------------------


def test_codex_command_line() -> None:
    agent = AgentConfig(runtime="codex", model="gpt-5.5", args={"--sandbox": "workspace-write", "--full-auto": True})
    assert codex.build_command(agent) == [
        "codex", "exec", "--sandbox", "workspace-write", "--full-auto", "--json", "-m", "gpt-5.5",
    ]  # fmt: skip


def test_codex_command_line_without_model_and_with_executable() -> None:
    agent = AgentConfig(runtime="codex", model="", command="/opt/codex/bin/codex", args={"--quiet": False, "-n": 3})
    assert codex.build_command(agent) == ["/opt/codex/bin/codex", "exec", "-n", "3", "--json"]


def test_claude_command_line() -> None:
    agent = AgentConfig(
        runtime="claude_code", model="claude-sonnet-4-6", args={"--allowedTools": ["Bash", "Edit"], "--max-turns": 10}
    )
    assert claude_code.build_command(agent) == [
        "claude", "--verbose", "--output-format", "stream-json", "--model", "claude-sonnet-4-6",
        "-p", "--allowedTools", "Bash,Edit", "--max-turns", "10",
    ]  # fmt: skip


def test_claude_command_line_without_model_and_with_executable() -> None:
    agent = AgentConfig(
        runtime="claude_code", model="", command="/usr/local/bin/claude", args={"--debug": True, "--off": False}
    )
    assert claude_code.build_command(agent) == [
        "/usr/local/bin/claude", "--verbose", "--output-format", "stream-json", "-p", "--debug",
    ]  # fmt: skip


def test_registry_runtimes() -> None:
    assert set(RUNTIME_ADAPTERS) == {"codex", "claude_code", "demo"}
    for runtime in RUNTIME_ADAPTERS:
        adapter = adapter_for(runtime)
        assert isinstance(adapter, RuntimeAdapter)
        mapper = adapter.new_mapper()
        assert mapper is not adapter.new_mapper()  # a fresh mapper per session
        assert mapper.feed({"type": "never-seen"})[0].kind == "unknown"
    assert isinstance(adapter_for("codex").new_mapper(), CodexMapper)
    assert isinstance(adapter_for("demo").new_mapper(), CodexMapper)
    assert isinstance(adapter_for("claude_code").new_mapper(), ClaudeMapper)
    agent = AgentConfig(runtime="claude_code", model="m")
    assert adapter_for("claude_code").build_command(agent) == claude_code.build_command(agent)


def test_registry_unknown_runtime() -> None:
    with pytest.raises(KeyError, match=r"unknown agent runtime 'gemini'.*claude_code, codex, demo"):
        adapter_for("gemini")


def test_demo_command_line() -> None:
    agent = AgentConfig(runtime="demo", model="m", args={"--steps": 3, "--fail": True, "--slow": False})
    assert adapter_for("demo").build_command(agent) == [
        sys.executable, "-m", "vik_tui.demo.agent", "--steps", "3", "--fail",
    ]  # fmt: skip


def test_demo_command_override() -> None:
    agent = AgentConfig(runtime="demo", model="m", command="python3 -u '/tmp/my agent.py'", args={"--tags": ["a", "b"]})
    assert adapter_for("demo").build_command(agent) == ["python3", "-u", "/tmp/my agent.py", "--tags", "a,b"]


# --- reference captures -------------------------------------------------------------------
# Records in vik's vocabulary (src/agent/response.rs), our extra fields after vik's.


def tool(call_id: str, name: str, status: str, input: str, output: str | None = None, **ours: Any) -> dict[str, Any]:
    """A tool_call record: vik's fields (phase from status, raw null), then ours."""
    phase = "request" if status == "started" else "result"
    return {"kind": "tool_call", "call_id": call_id, "name": name, "phase": phase, "input": input,
            "output": output, "raw": None, "status": status, **ours}  # fmt: skip


def tokens(input: int, output: int, cache_read: int, cache_write: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {"kind": "token_usage", "input": input, "output": output, "cache_read": cache_read,
            "cache_write": cache_write, "reasoning": reasoning}  # fmt: skip


def error(detail: str, fatal: bool = False, retry: bool = False) -> dict[str, Any]:
    return {"kind": "error", "detail": detail, "fatal": fatal, **({"retry": True} if retry else {})}


DONE = "DONE: the work is finished."
TURN_STARTED = {"kind": "unknown", "event_type": "turn.started", "raw": {"type": "turn.started"}}
CODEX_SUCCESS = [
    {"kind": "session_started", "session_id": "01a2067a-c705-7fc0-a0df-44e645624731"},
    TURN_STARTED,  # vik keeps it too
    tool("item_0", "shell", "started", "/bin/bash -lc 'ls -1'"),
    tool("item_0", "shell", "completed", "/bin/bash -lc 'ls -1'", "a.txt\nb.txt\n", exit_code=0),
    {"kind": "message", "text": DONE, "role": "assistant"},
    tokens(240, 90, 24, reasoning=16),
    {"kind": "completed"},  # the answer is the message above, not repeated here
]

_NO_DNS = "stream disconnected before completion: failed to lookup address information: Name does not resolve"
CODEX_KILLED = [
    {"kind": "session_started", "session_id": "01a2067a-cbd6-7341-9dc1-b45e47ead2e4"},
    TURN_STARTED,  # vik keeps it too
    *[error(f"Reconnecting... {n}/5 ({_NO_DNS})", retry=True) for n in range(2, 6)],
    error(f"Falling back from WebSockets to HTTPS transport. {_NO_DNS}"),
    *[error("Reconnecting... waiting for network (Connection failed: error sending request)", retry=True)] * 2,
]

CLAUDE_SUCCESS = [
    {
        "kind": "session_started", "session_id": "9f8a6854-5e09-4db9-aa8f-0be7600320cd",
        "model": "claude-sonnet-4-6", "cwd": "/home/dev/work/issues/42",
    },
    {"kind": "message", "text": "I will list the files.", "role": "assistant"},
    tokens(50 + 5, 1, 5),  # the first API call, as its first line reports it (cached tokens counted in)
    tool("toolu_5cea9d5db53c", "Bash", "started", "ls -1"),  # same call: its usage is not counted twice
    tool("toolu_5cea9d5db53c", "Bash", "completed", "ls -1", "a.txt\nb.txt"),
    {"kind": "message", "text": DONE, "role": "assistant"},
    tokens(50 + 5, 1, 5),  # the second API call
    tokens(165 - 110, 60 - 2, 15 - 10),  # what `modelUsage` adds (side requests): totals 165 / 60 / 15
    {"kind": "completed"},  # `result` equals the last message: not stored twice
]  # fmt: skip

CLAUDE_NOT_LOGGED_IN = [
    {
        "kind": "session_started", "session_id": "dc2d1c56-91c7-4865-8c00-61a16af25366",
        "model": "claude-sonnet-4-6", "cwd": "/home/dev/work/issues/42",
    },
    # the CLI's own (`<synthetic>`) message: a notice, not the model's word; `raw` keeps the line
    error("Not logged in · Please run /login"),
    tokens(0, 0, 0),
    error("Not logged in · Please run /login", fatal=True),  # is_error: the run failed
]  # fmt: skip

EXPECTED = {
    "codex-0.169.0-command-success.jsonl": CODEX_SUCCESS,
    "codex-0.169.0-no-network-killed-after-25s.jsonl": CODEX_KILLED,
    "claude_code-2.1.197-tool-use-success.jsonl": CLAUDE_SUCCESS,
}


# The newer captures: every field but `raw` (kept whole, checked separately) must match.
CLAUDE_MAX_TURNS = [
    {
        "kind": "session_started",
        "session_id": "5db7d919-4195-410b-a380-795a9ce56419",
        "model": "claude-sonnet-4-6",
        "cwd": "/home/dev/project/.vik/workflows/-home-dev-project-workflow.yml/issues/A-maxturns",
    },
    {"kind": "message", "text": "I will list the files.", "role": "assistant"},
    tokens(101 + 1003 + 7, 1, 1003, 7),
    tool("toolu_c29326537b6a", "Bash", "started", "ls -1"),
    tool("toolu_c29326537b6a", "Bash", "completed", "ls -1", "a.txt\nb.txt"),
    tokens(7, 14, 0),  # modelUsage: 108 fresh + 1003 read + 7 written in, 15 out
    error("Reached maximum number of turns (1)", fatal=True),
]
CODEX_429_THEN_SUCCESS = [
    {"kind": "session_started", "session_id": "01a20b06-50d8-7e11-b809-8bb909869bfc"},
    TURN_STARTED,  # vik keeps it too
    error("Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too Many Requests)", retry=True),
    tool("item_0", "shell", "started", "/bin/bash -lc 'ls -1'"),
    tool("item_0", "shell", "completed", "/bin/bash -lc 'ls -1'", "a.txt\nb.txt\n", exit_code=0),
    tool("item_1", "shell", "started", "/bin/bash -lc 'echo second'"),
    tool("item_1", "shell", "completed", "/bin/bash -lc 'echo second'", "second\n", exit_code=0),
    {"kind": "message", "text": DONE, "role": "assistant"},
    tokens(603, 126, 69, reasoning=6),
    {"kind": "completed"},
]
_DEMAND = "We’re currently experiencing high demand, which may cause temporary errors."
CODEX_500_EVERY_REQUEST = [
    {"kind": "session_started", "session_id": "01a20b06-51b0-7913-9b90-88a375edc1bb"},
    TURN_STARTED,  # vik keeps it too
    *[error(f"Reconnecting... {n}/5 ({_DEMAND})", retry=True) for n in range(1, 6)],
    error(_DEMAND),
    error(_DEMAND, fatal=True),
]
_OVERLOADED = (
    "API Error: 529 Overloaded (fake). This is a server-side issue, usually temporary — try again in a "
    "moment. If it persists, check your inference gateway (127.0.0.1:43781)."
)
_DELAYS = ("0.6", "1.2", "2.0", "4.5", "9.1", "17.1", "35.1", "37.9", "35.6", "37.6")
CLAUDE_529_GIVES_UP = [
    {
        "kind": "session_started",
        "session_id": "f70a2f34-ee47-4509-a3df-defd2bda2a8e",
        "model": "claude-sonnet-4-6",
        "cwd": "/home/dev/project/.vik/workflows/-home-dev-project-workflow.yml/issues/A-529",
    },
    *[error(f"API retry {n}/10 (529 overloaded) next in {d}s", retry=True) for n, d in enumerate(_DELAYS, 1)],
    error(_OVERLOADED),  # the <synthetic> message
    tokens(0, 0, 0),
    error(_OVERLOADED, fatal=True),
]
EXPECTED_WITHOUT_RAW = {
    "claude_code-2.1.197-not-logged-in.jsonl": CLAUDE_NOT_LOGGED_IN,
    "claude_code-2.1.197-max-turns-1.jsonl": CLAUDE_MAX_TURNS,
    "codex-0.169.0-429-once-then-success.jsonl": CODEX_429_THEN_SUCCESS,
    "codex-0.169.0-500-every-request.jsonl": CODEX_500_EVERY_REQUEST,
    "claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl": CLAUDE_529_GIVES_UP,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_capture_maps_exactly(name: str) -> None:
    assert dicts(run_capture(name)) == EXPECTED[name]


def test_every_reference_capture_has_expectations() -> None:
    names = all_reference_names()
    assert names, "no reference captures found"
    known = set(EXPECTED) | set(EXPECTED_WITHOUT_RAW)
    assert set(names) <= known, f"new capture(s) without expected events: {set(names) - known}"


@pytest.mark.parametrize("name", sorted(EXPECTED_WITHOUT_RAW))
def test_newer_capture_maps_exactly_apart_from_raw(name: str) -> None:
    events = dicts(run_capture(name))
    assert [{k: v for k, v in e.items() if k != "raw" or v is None} for e in events] == [
        {k: v for k, v in e.items() if k != "raw" or v is None} for e in EXPECTED_WITHOUT_RAW[name]
    ]


def test_claude_api_retries_are_transient_notices_that_keep_the_raw_line() -> None:
    events = run_capture("claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl")
    retries = [e for e in events if isinstance(e, Error) and e.detail.startswith("API retry")]
    assert len(retries) == 10 and not any(e.fatal for e in retries) and all(e.retry for e in retries)
    assert all(e.vik is not None and e.vik["raw"]["error_status"] == 529 for e in retries)
    assert all(e.to_dict()["kind"] == "unknown" for e in retries)  # vik's reading: never a failure


def test_claude_synthetic_message_is_not_the_models_word() -> None:
    events = run_capture("claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl")
    assert not [e for e in events if e.kind == "message"], "a <synthetic> message must not read as the model's"
    synthetic = [e for e in events if isinstance(e, Error) and e.detail.startswith("API Error: 529") and not e.fatal]
    assert len(synthetic) == 1 and not synthetic[0].retry
    assert isinstance(events[-1], Error) and events[-1].fatal


def test_local_copy_matches_shared_reference() -> None:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("shared/reference not beside this checkout")
    for name in [*EXPECTED, *EXPECTED_WITHOUT_RAW]:
        shared = SHARED_REFERENCE / name
        if shared.is_file():
            assert (LOCAL_REFERENCE / name).read_bytes() == shared.read_bytes(), name


def test_codex_success_outcome_facts() -> None:
    events = run_capture("codex-0.169.0-command-success.jsonl")
    usage = [e for e in events if isinstance(e, TokenUsage)]
    assert [(u.input, u.cache_read, u.output) for u in usage] == [(240, 24, 90)]
    assert isinstance(events[-1], Completed) and events[-1].result is None


def test_codex_killed_has_only_transient_errors() -> None:
    events = run_capture("codex-0.169.0-no-network-killed-after-25s.jsonl")
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 7 and not any(e.fatal for e in errors)
    assert all(e.detail.startswith("Reconnecting...") and e.retry for e in errors if "WebSockets" not in e.detail)
    assert not any(e.kind == "completed" for e in events)


def test_claude_not_logged_in_is_a_failure_despite_subtype_success() -> None:
    final = run_capture("claude_code-2.1.197-not-logged-in.jsonl")[-1]
    assert isinstance(final, Error) and final.fatal
    assert final.detail == "Not logged in · Please run /login"


def test_claude_tokens_mean_what_codex_tokens_mean() -> None:
    """`input` counts cached prompt tokens for both runtimes; Claude's totals come from
    `modelUsage` (side requests included) when the result line has it, else from `usage`."""
    usage = [e for e in run_capture("claude_code-2.1.197-tool-use-success.jsonl") if isinstance(e, TokenUsage)]
    assert sum(u.input for u in usage) == 150 + 15 and sum(u.output for u in usage) == 60
    assert sum(u.cache_read for u in usage) == 15
    mapper = ClaudeMapper()
    result = {"type": "result", "subtype": "success", "is_error": False, "result": "ok",
              "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5,
                        "output_tokens": 7}}  # fmt: skip
    assert dicts(mapper.feed(result)) == [tokens(105, 7, 90, 5), {"kind": "completed", "result": "ok"}]
    two_models = {"type": "result", "is_error": False, "modelUsage": {
        "claude-opus": {"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 100,
                        "cacheCreationInputTokens": 1},
        "claude-haiku": {"inputTokens": 20, "outputTokens": 2}}}  # fmt: skip
    assert dicts(ClaudeMapper().feed(two_models))[0] == tokens(124, 6, 100, 1)


# --- codex: shapes not in the captures ----------------------------------------------------


def codex_feed(*objs: Any) -> list[dict[str, Any]]:
    mapper = CodexMapper()
    out: list[dict[str, Any]] = []
    for obj in objs:
        out += dicts(mapper.feed(obj))
    return out


def item(event: str, **fields: Any) -> dict[str, Any]:
    return {"type": event, "item": fields}


def unknown(raw: Any) -> dict[str, Any]:
    event_type = raw.get("type") if isinstance(raw, dict) and isinstance(raw.get("type"), str) else None
    return {"kind": "unknown", "event_type": event_type, "raw": raw}


def test_codex_turn_failed_is_fatal() -> None:
    assert codex_feed({"type": "turn.failed", "error": {"message": "usage limit reached"}}) == [
        error("usage limit reached", fatal=True)
    ]
    assert codex_feed({"type": "turn.failed"}) == [error("turn failed", fatal=True)]


def test_codex_turn_started_and_unknown_lines_are_kept() -> None:
    assert codex_feed({"type": "turn.started"}) == [unknown({"type": "turn.started"})]
    weird = {"type": "item.plan.delta", "item_id": "x", "delta": "d"}
    assert codex_feed(weird, [1, 2], "text", None) == [unknown(weird), unknown([1, 2]), unknown("text"), unknown(None)]


def test_codex_command_failure_by_exit_code_or_status() -> None:
    failed_exit = item("item.completed", id="i", type="command_execution", command="false",
                       aggregated_output="", exit_code=1, status="completed")  # fmt: skip
    declined = item("item.completed", id="j", type="command_execution", command="rm -rf /",
                    aggregated_output="", exit_code=None, status="declined")  # fmt: skip
    assert codex_feed(failed_exit, declined) == [
        tool("i", "shell", "failed", "false", "", exit_code=1),
        tool("j", "shell", "failed", "rm -rf /", ""),
    ]


def test_codex_reasoning_plan_and_todo() -> None:
    started = item("item.started", id="r", type="reasoning", text="draft")
    assert codex_feed(
        started,
        item("item.completed", id="r", type="reasoning", text="**Thinking**"),
        item("item.updated", id="t", type="todo_list",
             items=[{"text": "read", "completed": True}, {"text": "write", "completed": False}]),
        item("item.completed", id="p", type="plan", text="1. do it"),
    ) == [
        unknown(started),  # vik's reading, and nothing more of ours: the text comes whole on completion
        {"kind": "message", "text": "**Thinking**", "role": "reasoning"},
        {"kind": "message", "text": "[x] read\n[ ] write", "role": "plan"},
        {"kind": "message", "text": "1. do it", "role": "plan"},
    ]  # fmt: skip


def test_codex_mcp_file_change_web_search() -> None:
    mcp_ok = item(
        "item.completed",
        id="m",
        type="mcp_tool_call",
        server="github",
        tool="search_issues",
        arguments={"q": "is:open"},
        status="completed",
        result={"content": [{"type": "text", "text": "3 issues"}], "structured_content": None},
    )
    mcp_err = item(
        "item.completed",
        id="n",
        type="mcp_tool_call",
        server="db",
        tool="query",
        arguments={},
        status="failed",
        result=None,
        error={"message": "timeout"},
    )
    change = item(
        "item.completed",
        id="f",
        type="file_change",
        status="completed",
        changes=[{"path": "a.py", "kind": "update"}, {"path": "b.py", "kind": "add"}],
    )
    search = item("item.started", id="w", type="web_search", query="textual datatable")
    assert codex_feed(mcp_ok, mcp_err, change, search) == [
        tool("m", "github.search_issues", "completed", '{"q":"is:open"}', "3 issues"),
        tool("n", "db.query", "failed", "{}", "timeout"),
        tool("f", "edit", "completed", "update a.py, add b.py"),
        tool("w", "web_search", "started", "textual datatable"),
    ]


def test_codex_collab_is_subagent() -> None:
    base = {"id": "c", "type": "collab_tool_call", "tool": "spawn_agent", "sender_thread_id": "t0",
            "receiver_thread_ids": ["t1", 7], "prompt": "write the tests", "agents_states": {}}  # fmt: skip
    assert codex_feed(
        {"type": "item.started", "item": {**base, "status": "in_progress"}},
        {"type": "item.completed", "item": {**base, "status": "completed"}},
        {"type": "item.completed", "item": {**base, "status": "failed"}},
    ) == [
        {"kind": "subagent", "call_id": "c", "action": "spawn_agent", "status": s, "target_ids": ["t1"], "raw": None,
         "name": "spawn_agent", "description": "write the tests"}
        for s in ("started", "completed", "failed")
    ]  # fmt: skip


def test_codex_item_error_is_transient() -> None:
    assert codex_feed(item("item.completed", id="e", type="error", message="model rerouted")) == [
        error("model rerouted")
    ]


def rate_limit(scope: str, used: float, reset_at: str, raw: Any, observed: dict[str, Any]) -> dict[str, Any]:
    """A vik `rate_limit` record: remaining is the percentage left."""
    left = max(0, min(100, round(100 - used)))
    return {"kind": "rate_limit", "scope": scope, "remaining": left, "reset_at": reset_at,
            "observed_at": observed["observed_at"], "used_percent": used, "limit": 100, "raw": raw}  # fmt: skip


def test_codex_rate_limits() -> None:
    snapshot = {
        "primary": {"used_percent": 42.5, "window_minutes": 300, "resets_at": 1763483205},
        "secondary": {"used_percent": 7.0, "window_minutes": 10080, "resets_at": 1763606387},
        "plan_type": "plus",
    }
    token_count = {"type": "token_count", "info": None, "rate_limits": snapshot}
    rollout = {"type": "event_msg", "payload": {"type": "token_count", "rate_limits": snapshot}}
    for line in (token_count, rollout, {"type": "thread.rate_limits.updated", "rate_limits": snapshot}):
        got = codex_feed(line)
        assert got == [
            rate_limit("codex.primary", 42.5, "2025-11-18T16:26:45Z", line, got[0]),
            rate_limit("codex.secondary", 7.0, epoch_to_iso(1763606387) or "", line, got[1]),
        ]
        assert all(utc_time(r["observed_at"]) is not None for r in got)  # RFC 3339, as vik's DateTime reads
    # no reset time: vik's `rate_limit` cannot hold it, so it is an `unknown` with our fields added
    spark = {"type": "rate_limits.updated", "rateLimits": {"limitId": "codex_bengalfox",
             "primary": {"usedPercent": 3, "windowDurationMins": 300}}}  # fmt: skip
    got = codex_feed(spark)
    assert got == [{**unknown(spark), "scope": "codex.codex_bengalfox.primary", "remaining": 97,
                    "observed_at": got[0]["observed_at"], "used_percent": 3.0, "limit": 100}]  # fmt: skip
    back = AgentEvent.from_record(got[0])
    assert isinstance(back, RateLimit) and back.scope == "codex.codex_bengalfox.primary" and back.remaining == 97
    empty = {"type": "token_count", "rate_limits": None}
    assert codex_feed(empty) == [unknown(empty)]


def test_codex_wrong_types_do_not_raise() -> None:
    assert codex_feed({"type": "thread.started", "thread_id": 5}) == [
        unknown({"type": "thread.started", "thread_id": 5})
    ]
    assert codex_feed({"type": "turn.completed", "usage": {"input_tokens": "9", "output_tokens": True}}) == [
        tokens(0, 0, 0),
        {"kind": "completed"},
    ]
    assert codex_feed({"type": "turn.completed", "usage": {"input_tokens": -4, "output_tokens": 2.0}}) == [
        tokens(0, 2, 0),  # vik's counts are u64: never negative
        {"kind": "completed"},
    ]
    assert codex_feed({"type": "item.completed", "item": "nope"})[0]["kind"] == "unknown"


# --- claude: shapes not in the captures ---------------------------------------------------


def claude_feed(*objs: Any) -> list[dict[str, Any]]:
    mapper = ClaudeMapper()
    out: list[dict[str, Any]] = []
    for obj in objs:
        out += dicts(mapper.feed(obj))
    return out


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"type": "assistant", "message": {"role": "assistant", "content": list(blocks)}}


def user(*blocks: Any) -> dict[str, Any]:
    return {"type": "user", "message": {"role": "user", "content": list(blocks)}}


def test_claude_thinking_and_other_tools() -> None:
    assert claude_feed(
        assistant({"type": "thinking", "thinking": "hmm", "signature": "x"},
                  {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a.py"}}),
        user({"type": "tool_result", "tool_use_id": "t1", "is_error": True,
              "content": [{"type": "text", "text": "no such file"}, {"type": "image"}]}),
        user({"type": "tool_result", "tool_use_id": "zzz", "content": "orphan"}),
    ) == [
        {"kind": "message", "text": "hmm", "role": "reasoning"},
        tool("t1", "Read", "started", '{"file_path":"/a.py"}'),
        tool("t1", "Read", "failed", '{"file_path":"/a.py"}', "no such file"),
        {**tool("zzz", "tool", "completed", "", "orphan"), "input": None},
    ]  # fmt: skip


def test_claude_task_and_agent_are_subagents() -> None:
    def sub(call_id: str, action: str, name: str, status: str, description: str | None = None) -> dict[str, Any]:
        record = {"kind": "subagent", "call_id": call_id, "action": action, "status": status, "target_ids": [],
                  "raw": None, "name": name}  # fmt: skip
        return record | ({"description": description} if description else {})

    assert claude_feed(
        assistant({"type": "tool_use", "id": "a1", "name": "Task",
                   "input": {"subagent_type": "Explore", "description": "find tests", "prompt": "..."}},
                  {"type": "tool_use", "id": "a2", "name": "Agent", "input": {"prompt": "..."}}),
        user({"type": "tool_result", "tool_use_id": "a1", "content": [{"type": "text", "text": "found"}]},
             {"type": "tool_result", "tool_use_id": "a2", "is_error": True, "content": "crashed"}),
    ) == [
        sub("a1", "Task", "Explore", "started", "find tests"),
        sub("a2", "Agent", "Agent", "started"),
        sub("a1", "Task", "Explore", "completed", "find tests"),
        sub("a2", "Agent", "Agent", "failed"),
    ]  # fmt: skip


def test_claude_system_other_subtypes_and_unknowns() -> None:
    hook = {"type": "system", "subtype": "hook_response", "session_id": "s"}
    stream = {"type": "stream_event", "event": {}}
    block = {"type": "server_tool_use", "id": "x"}
    no_id = {"type": "system", "subtype": "init", "model": "m"}  # vik's session_started needs an id
    assert claude_feed(hook, stream, assistant(block), 42, no_id) == [
        unknown(hook),
        unknown(stream),
        unknown(assistant(block)),  # vik keeps the line whole when it has nothing vik reads
        unknown(42),
        unknown(no_id),
    ]


def test_claude_result_error_subtypes() -> None:
    assert claude_feed({"type": "result", "subtype": "error_max_turns", "is_error": True, "errors": ["max turns"]}) == [
        tokens(0, 0, 0),
        error("max turns", fatal=True),
    ]
    # No is_error at all: fall back to the subtype.
    assert claude_feed({"type": "result", "subtype": "error_during_execution"})[-1] == error(
        "the run ended with error_during_execution", fatal=True
    )


def test_claude_result_text_kept_only_when_it_is_not_the_last_message() -> None:
    said = assistant({"type": "text", "text": "all done"})
    assert claude_feed(said, {"type": "result", "is_error": False, "result": "all done"})[-1] == {"kind": "completed"}
    assert claude_feed(said, {"type": "result", "is_error": False, "result": "summary"})[-1] == {
        "kind": "completed",
        "result": "summary",
    }


def test_claude_rate_limit_event() -> None:
    allowed = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "allowed", "resetsAt": 1784283600, "rateLimitType": "five_hour",
                            "overageStatus": "allowed", "isUsingOverage": False},
    }  # fmt: skip
    rejected = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "rejected", "rateLimitType": "seven_day", "resetsAt": 1784283600},
    }
    windows = {
        "type": "rate_limit_event",
        "rate_limit_info": {"unifiedWindows": {"five_hour": {"utilization": 0.16, "resetsAt": 1790421000},
                                               "seven_day": {"utilization": 0.81}}},
    }  # fmt: skip
    bare = {"type": "rate_limit_event"}
    events = claude_feed(allowed, rejected, windows, bare)
    assert events == [
        # no figure: an `unknown` for vik, a rate limit for us
        {**unknown(allowed), "scope": "claude.five_hour", "reset_at": "2026-07-17T10:20:00Z",
         "observed_at": events[0]["observed_at"]},
        rate_limit("claude.seven_day", 100.0, "2026-07-17T10:20:00Z", rejected, events[1]),
        rate_limit("claude.five_hour", 16.0, epoch_to_iso(1790421000) or "", windows, events[2]),
        {**unknown(windows), "scope": "claude.seven_day", "remaining": 19, "observed_at": events[3]["observed_at"],
         "used_percent": 81.0, "limit": 100},
        unknown(bare),
    ]  # fmt: skip


def test_epoch_to_iso() -> None:
    assert epoch_to_iso(0) == "1970-01-01T00:00:00Z"
    assert epoch_to_iso(1784283600000) == epoch_to_iso(1784283600)  # milliseconds
    assert epoch_to_iso("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert epoch_to_iso(float("inf")) is None
    assert epoch_to_iso(10**400) is None
    assert epoch_to_iso(True) is None


def test_claude_usage_is_counted_once_per_message_and_only_recent_messages_are_kept() -> None:
    """Every content block of one API call repeats its usage: counted once. The mapper keeps the
    usage of the last USAGE_KEPT messages only (their lines come together), so its state stays
    small however long the session (a reader process sends it back with every batch)."""
    mapper = ClaudeMapper()

    def line(message_id: str | None, text: str) -> dict[str, Any]:
        message = {"role": "assistant", "content": [{"type": "text", "text": text}],
                   "usage": {"input_tokens": 10, "output_tokens": 2}}  # fmt: skip
        if message_id is not None:
            message["id"] = message_id
        return {"type": "assistant", "message": message}

    counted = 0
    for step in range(1000):
        for block in range(3):  # three blocks of one call
            counted += sum(e.output for e in mapper.feed(line(f"msg_{step}", f"b{block}")) if isinstance(e, TokenUsage))
    assert counted == 1000 * 2
    assert len(mapper._usage_seen) == claude_code.USAGE_KEPT
    unnamed = [e for e in mapper.feed(line(None, "x")) + mapper.feed(line(None, "y")) if isinstance(e, TokenUsage)]
    assert [u.output for u in unnamed] == [2, 2]  # without an id, each line is its own call
