"""Runtime adapters: command lines (vik-compatible) and mapping of real CLI output to events.

The reference captures are the unedited stdout of real Codex / Claude Code runs; each must map
to exactly the events (and so the outcome) described in shared/reference/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from vik_tui.agents import claude_code, codex
from vik_tui.agents.args import epoch_to_iso, forward_args
from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent, Completed, Error
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
    return [e.to_dict() for e in events]


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

CODEX_SUCCESS = [
    {"kind": "session_started", "session_id": "01a2067a-c705-7fc0-a0df-44e645624731"},
    {
        "kind": "tool_call", "call_id": "item_0", "name": "shell", "status": "started",
        "input": "/bin/bash -lc 'ls -1'",
    },
    {
        "kind": "tool_call", "call_id": "item_0", "name": "shell", "status": "completed",
        "input": "/bin/bash -lc 'ls -1'", "output": "a.txt\nb.txt\n", "exit_code": 0,
    },
    {"kind": "message", "text": "DONE: the work is finished.", "role": "assistant"},
    {
        "kind": "token_usage", "input_tokens": 240, "output_tokens": 90, "cache_read_tokens": 24,
        "cache_write_tokens": 0, "reasoning_tokens": 16,
    },
    {"kind": "completed", "success": True, "result": "DONE: the work is finished."},
]  # fmt: skip

_NO_DNS = "stream disconnected before completion: failed to lookup address information: Name does not resolve"
CODEX_KILLED = [
    {"kind": "session_started", "session_id": "01a2067a-cbd6-7341-9dc1-b45e47ead2e4"},
    *[{"kind": "error", "message": f"Reconnecting... {n}/5 ({_NO_DNS})", "fatal": False} for n in range(2, 6)],
    {"kind": "error", "message": f"Falling back from WebSockets to HTTPS transport. {_NO_DNS}", "fatal": False},
    *[
        {
            "kind": "error",
            "message": "Reconnecting... waiting for network (Connection failed: error sending request)",
            "fatal": False,
        }
    ]
    * 2,
]

CLAUDE_SUCCESS = [
    {
        "kind": "session_started", "session_id": "9f8a6854-5e09-4db9-aa8f-0be7600320cd",
        "model": "claude-sonnet-4-6", "cwd": "/home/dev/work/issues/42",
    },
    {"kind": "message", "text": "I will list the files.", "role": "assistant"},
    {"kind": "tool_call", "call_id": "toolu_5cea9d5db53c", "name": "Bash", "status": "started", "input": "ls -1"},
    {
        "kind": "tool_call", "call_id": "toolu_5cea9d5db53c", "name": "Bash", "status": "completed",
        "input": "ls -1", "output": "a.txt\nb.txt",
    },
    {"kind": "message", "text": "DONE: the work is finished.", "role": "assistant"},
    {
        "kind": "token_usage", "input_tokens": 100, "output_tokens": 40, "cache_read_tokens": 10,
        "cache_write_tokens": 0, "reasoning_tokens": 0,
    },
    {"kind": "completed", "success": True, "result": "DONE: the work is finished."},
]  # fmt: skip

CLAUDE_NOT_LOGGED_IN = [
    {
        "kind": "session_started", "session_id": "dc2d1c56-91c7-4865-8c00-61a16af25366",
        "model": "claude-sonnet-4-6", "cwd": "/home/dev/work/issues/42",
    },
    # the CLI's own (`<synthetic>`) message: a notice, not the model's word; `raw` keeps the line
    {"kind": "error", "message": "Not logged in · Please run /login", "fatal": False},
    {
        "kind": "token_usage", "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
        "cache_write_tokens": 0, "reasoning_tokens": 0,
    },
    {"kind": "completed", "success": False, "result": "Not logged in · Please run /login"},
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
    {"kind": "tool_call", "call_id": "toolu_c29326537b6a", "name": "Bash", "status": "started", "input": "ls -1"},
    {
        "kind": "tool_call",
        "call_id": "toolu_c29326537b6a",
        "name": "Bash",
        "status": "completed",
        "input": "ls -1",
        "output": "a.txt\nb.txt",
    },
    {
        "kind": "token_usage",
        "input_tokens": 101,
        "output_tokens": 12,
        "cache_read_tokens": 1003,
        "cache_write_tokens": 7,
        "reasoning_tokens": 0,
    },
    {"kind": "completed", "success": False, "result": "Reached maximum number of turns (1)"},
]
CODEX_429_THEN_SUCCESS = [
    {"kind": "session_started", "session_id": "01a20b06-50d8-7e11-b809-8bb909869bfc"},
    {
        "kind": "error",
        "message": "Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too Many Requests)",
        "fatal": False,
    },
    {"kind": "tool_call", "call_id": "item_0", "name": "shell", "status": "started", "input": "/bin/bash -lc 'ls -1'"},
    {
        "kind": "tool_call",
        "call_id": "item_0",
        "name": "shell",
        "status": "completed",
        "input": "/bin/bash -lc 'ls -1'",
        "output": "a.txt\nb.txt\n",
        "exit_code": 0,
    },
    {
        "kind": "tool_call",
        "call_id": "item_1",
        "name": "shell",
        "status": "started",
        "input": "/bin/bash -lc 'echo second'",
    },
    {
        "kind": "tool_call",
        "call_id": "item_1",
        "name": "shell",
        "status": "completed",
        "input": "/bin/bash -lc 'echo second'",
        "output": "second\n",
        "exit_code": 0,
    },
    {"kind": "message", "text": "DONE: the work is finished.", "role": "assistant"},
    {
        "kind": "token_usage",
        "input_tokens": 603,
        "output_tokens": 126,
        "cache_read_tokens": 69,
        "cache_write_tokens": 0,
        "reasoning_tokens": 6,
    },
    {"kind": "completed", "success": True, "result": "DONE: the work is finished."},
]
CODEX_500_EVERY_REQUEST = [
    {"kind": "session_started", "session_id": "01a20b06-51b0-7913-9b90-88a375edc1bb"},
    {
        "kind": "error",
        "message": "Reconnecting... 1/5 (We’re currently experiencing high demand, which may cause temporary errors.)",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "Reconnecting... 2/5 (We’re currently experiencing high demand, which may cause temporary errors.)",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "Reconnecting... 3/5 (We’re currently experiencing high demand, which may cause temporary errors.)",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "Reconnecting... 4/5 (We’re currently experiencing high demand, which may cause temporary errors.)",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "Reconnecting... 5/5 (We’re currently experiencing high demand, which may cause temporary errors.)",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "We’re currently experiencing high demand, which may cause temporary errors.",
        "fatal": False,
    },
    {
        "kind": "error",
        "message": "We’re currently experiencing high demand, which may cause temporary errors.",
        "fatal": True,
    },
]
CLAUDE_529_GIVES_UP = [
    {
        "kind": "session_started",
        "session_id": "f70a2f34-ee47-4509-a3df-defd2bda2a8e",
        "model": "claude-sonnet-4-6",
        "cwd": "/home/dev/project/.vik/workflows/-home-dev-project-workflow.yml/issues/A-529",
    },
    {"kind": "error", "message": "API retry 1/10 (529 overloaded) next in 0.6s", "fatal": False},
    {"kind": "error", "message": "API retry 2/10 (529 overloaded) next in 1.2s", "fatal": False},
    {"kind": "error", "message": "API retry 3/10 (529 overloaded) next in 2.0s", "fatal": False},
    {"kind": "error", "message": "API retry 4/10 (529 overloaded) next in 4.5s", "fatal": False},
    {"kind": "error", "message": "API retry 5/10 (529 overloaded) next in 9.1s", "fatal": False},
    {"kind": "error", "message": "API retry 6/10 (529 overloaded) next in 17.1s", "fatal": False},
    {"kind": "error", "message": "API retry 7/10 (529 overloaded) next in 35.1s", "fatal": False},
    {"kind": "error", "message": "API retry 8/10 (529 overloaded) next in 37.9s", "fatal": False},
    {"kind": "error", "message": "API retry 9/10 (529 overloaded) next in 35.6s", "fatal": False},
    {"kind": "error", "message": "API retry 10/10 (529 overloaded) next in 37.6s", "fatal": False},
    {
        "kind": "error",
        "message": "API Error: 529 Overloaded (fake). This is a server-side issue, usually temporary — try again in a "
        "moment. If it persists, check your inference gateway (127.0.0.1:43781).",
        "fatal": False,
    },
    {
        "kind": "token_usage",
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    },
    {
        "kind": "completed",
        "success": False,
        "result": "API Error: 529 Overloaded (fake). This is a server-side issue, usually temporary — try again in a "
        "moment. If it persists, check your inference gateway (127.0.0.1:43781).",
    },
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
    assert [{k: v for k, v in e.items() if k != "raw"} for e in events] == EXPECTED_WITHOUT_RAW[name]


def test_claude_api_retries_are_transient_notices_that_keep_the_raw_line() -> None:
    events = run_capture("claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl")
    retries = [e for e in events if isinstance(e, Error) and e.message.startswith("API retry")]
    assert len(retries) == 10 and not any(e.fatal for e in retries)
    assert all(isinstance(e.raw, dict) and e.raw["error_status"] == 529 for e in retries)


def test_claude_synthetic_message_is_not_the_models_word() -> None:
    events = run_capture("claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl")
    assert not [e for e in events if e.kind == "message"], "a <synthetic> message must not read as the model's"
    synthetic = [e for e in events if isinstance(e, Error) and e.message.startswith("API Error: 529")]
    assert len(synthetic) == 1 and not synthetic[0].fatal
    assert isinstance(events[-1], Completed) and not events[-1].success


def test_local_copy_matches_shared_reference() -> None:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("shared/reference not beside this checkout")
    for name in [*EXPECTED, *EXPECTED_WITHOUT_RAW]:
        shared = SHARED_REFERENCE / name
        if shared.is_file():
            assert (LOCAL_REFERENCE / name).read_bytes() == shared.read_bytes(), name


def test_codex_success_outcome_facts() -> None:
    events = run_capture("codex-0.169.0-command-success.jsonl")
    usage = [e for e in events if e.kind == "token_usage"]
    assert [(u.input_tokens, u.cache_read_tokens, u.output_tokens) for u in usage] == [(240, 24, 90)]
    assert isinstance(events[-1], Completed) and events[-1].success


def test_codex_killed_has_only_transient_errors() -> None:
    events = run_capture("codex-0.169.0-no-network-killed-after-25s.jsonl")
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 7 and not any(e.fatal for e in errors)
    assert all(e.message.startswith("Reconnecting...") for e in errors if "WebSockets" not in e.message)
    assert not any(e.kind == "completed" for e in events)


def test_claude_not_logged_in_is_a_failure_despite_subtype_success() -> None:
    completed = run_capture("claude_code-2.1.197-not-logged-in.jsonl")[-1]
    assert isinstance(completed, Completed)
    assert completed.success is False
    assert completed.result == "Not logged in · Please run /login"


def test_claude_success_usage() -> None:
    usage = [e for e in run_capture("claude_code-2.1.197-tool-use-success.jsonl") if e.kind == "token_usage"]
    assert [(u.input_tokens, u.output_tokens, u.cache_read_tokens) for u in usage] == [(100, 40, 10)]


# --- codex: shapes not in the captures ----------------------------------------------------


def codex_feed(*objs: Any) -> list[dict[str, Any]]:
    mapper = CodexMapper()
    out: list[dict[str, Any]] = []
    for obj in objs:
        out += dicts(mapper.feed(obj))
    return out


def item(event: str, **fields: Any) -> dict[str, Any]:
    return {"type": event, "item": fields}


def test_codex_turn_failed_is_fatal() -> None:
    assert codex_feed({"type": "turn.failed", "error": {"message": "usage limit reached"}}) == [
        {"kind": "error", "message": "usage limit reached", "fatal": True}
    ]
    assert codex_feed({"type": "turn.failed"}) == [{"kind": "error", "message": "turn failed", "fatal": True}]


def test_codex_turn_started_is_noise_and_unknown_is_kept() -> None:
    assert codex_feed({"type": "turn.started"}) == []
    weird = {"type": "item.plan.delta", "item_id": "x", "delta": "d"}
    assert codex_feed(weird, [1, 2], "text", None) == [
        {"kind": "unknown", "raw": weird},
        {"kind": "unknown", "raw": [1, 2]},
        {"kind": "unknown", "raw": "text"},
        {"kind": "unknown"},
    ]


def test_codex_command_failure_by_exit_code_or_status() -> None:
    failed_exit = item("item.completed", id="i", type="command_execution", command="false",
                       aggregated_output="", exit_code=1, status="completed")  # fmt: skip
    declined = item("item.completed", id="j", type="command_execution", command="rm -rf /",
                    aggregated_output="", exit_code=None, status="declined")  # fmt: skip
    assert codex_feed(failed_exit, declined) == [
        {"kind": "tool_call", "call_id": "i", "name": "shell", "status": "failed", "input": "false",
         "output": "", "exit_code": 1},
        {"kind": "tool_call", "call_id": "j", "name": "shell", "status": "failed", "input": "rm -rf /",
         "output": ""},
    ]  # fmt: skip


def test_codex_reasoning_plan_and_todo() -> None:
    assert codex_feed(
        item("item.started", id="r", type="reasoning", text="draft"),
        item("item.completed", id="r", type="reasoning", text="**Thinking**"),
        item("item.updated", id="t", type="todo_list",
             items=[{"text": "read", "completed": True}, {"text": "write", "completed": False}]),
        item("item.completed", id="p", type="plan", text="1. do it"),
    ) == [
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
        {"kind": "tool_call", "call_id": "m", "name": "github.search_issues", "status": "completed",
         "input": '{"q":"is:open"}', "output": "3 issues"},
        {"kind": "tool_call", "call_id": "n", "name": "db.query", "status": "failed", "input": "{}",
         "output": "timeout"},
        {"kind": "tool_call", "call_id": "f", "name": "edit", "status": "completed",
         "input": "update a.py, add b.py"},
        {"kind": "tool_call", "call_id": "w", "name": "web_search", "status": "started",
         "input": "textual datatable"},
    ]  # fmt: skip


def test_codex_collab_is_subagent() -> None:
    base = {"id": "c", "type": "collab_tool_call", "tool": "spawn_agent", "sender_thread_id": "t0",
            "receiver_thread_ids": ["t1"], "prompt": "write the tests", "agents_states": {}}  # fmt: skip
    assert codex_feed(
        {"type": "item.started", "item": {**base, "status": "in_progress"}},
        {"type": "item.completed", "item": {**base, "status": "completed"}},
        {"type": "item.completed", "item": {**base, "status": "failed"}},
    ) == [
        {"kind": "subagent", "call_id": "c", "name": "spawn_agent", "status": s, "description": "write the tests"}
        for s in ("started", "completed", "failed")
    ]


def test_codex_item_error_is_transient() -> None:
    assert codex_feed(item("item.completed", id="e", type="error", message="model rerouted")) == [
        {"kind": "error", "message": "model rerouted", "fatal": False}
    ]


def test_codex_rate_limits() -> None:
    snapshot = {
        "primary": {"used_percent": 42.5, "window_minutes": 300, "resets_at": 1763483205},
        "secondary": {"used_percent": 7.0, "window_minutes": 10080, "resets_at": 1763606387},
        "plan_type": "plus",
    }
    token_count = {"type": "token_count", "info": None, "rate_limits": snapshot}
    rollout = {"type": "event_msg", "payload": {"type": "token_count", "rate_limits": snapshot}}
    for line in (token_count, rollout, {"type": "thread.rate_limits.updated", "rate_limits": snapshot}):
        assert codex_feed(line) == [
            {"kind": "rate_limit", "scope": "codex.primary", "used_percent": 42.5,
             "resets_at": "2025-11-18T16:26:45Z", "raw": line},
            {"kind": "rate_limit", "scope": "codex.secondary", "used_percent": 7.0,
             "resets_at": epoch_to_iso(1763606387), "raw": line},
        ]  # fmt: skip
    spark = {"type": "rate_limits.updated", "rateLimits": {"limitId": "codex_bengalfox",
             "primary": {"usedPercent": 3, "windowDurationMins": 300}}}  # fmt: skip
    assert codex_feed(spark) == [
        {"kind": "rate_limit", "scope": "codex.codex_bengalfox.primary", "used_percent": 3.0, "raw": spark}
    ]
    empty = {"type": "token_count", "rate_limits": None}
    assert codex_feed(empty) == [{"kind": "unknown", "raw": empty}]


def test_codex_wrong_types_do_not_raise() -> None:
    assert codex_feed({"type": "thread.started", "thread_id": 5}) == [
        {"kind": "unknown", "raw": {"type": "thread.started", "thread_id": 5}}
    ]
    assert codex_feed({"type": "turn.completed", "usage": {"input_tokens": "9", "output_tokens": True}}) == [
        {"kind": "token_usage", "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
         "cache_write_tokens": 0, "reasoning_tokens": 0},
        {"kind": "completed", "success": True},
    ]  # fmt: skip
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
        {"kind": "tool_call", "call_id": "t1", "name": "Read", "status": "started", "input": '{"file_path":"/a.py"}'},
        {"kind": "tool_call", "call_id": "t1", "name": "Read", "status": "failed", "input": '{"file_path":"/a.py"}',
         "output": "no such file"},
        {"kind": "tool_call", "call_id": "zzz", "name": "tool", "status": "completed", "output": "orphan"},
    ]  # fmt: skip


def test_claude_task_and_agent_are_subagents() -> None:
    assert claude_feed(
        assistant({"type": "tool_use", "id": "a1", "name": "Task",
                   "input": {"subagent_type": "Explore", "description": "find tests", "prompt": "..."}},
                  {"type": "tool_use", "id": "a2", "name": "Agent", "input": {"prompt": "..."}}),
        user({"type": "tool_result", "tool_use_id": "a1", "content": [{"type": "text", "text": "found"}]},
             {"type": "tool_result", "tool_use_id": "a2", "is_error": True, "content": "crashed"}),
    ) == [
        {"kind": "subagent", "call_id": "a1", "name": "Explore", "status": "started", "description": "find tests"},
        {"kind": "subagent", "call_id": "a2", "name": "Agent", "status": "started"},
        {"kind": "subagent", "call_id": "a1", "name": "Explore", "status": "completed", "description": "find tests"},
        {"kind": "subagent", "call_id": "a2", "name": "Agent", "status": "failed"},
    ]  # fmt: skip


def test_claude_system_other_subtypes_and_unknowns() -> None:
    hook = {"type": "system", "subtype": "hook_response", "session_id": "s"}
    stream = {"type": "stream_event", "event": {}}
    block = {"type": "server_tool_use", "id": "x"}
    assert claude_feed(hook, stream, assistant(block), 42) == [
        {"kind": "unknown", "raw": hook},
        {"kind": "unknown", "raw": stream},
        {"kind": "unknown", "raw": block},
        {"kind": "unknown", "raw": 42},
    ]


def test_claude_result_error_subtypes() -> None:
    assert claude_feed(
        {"type": "result", "subtype": "error_max_turns", "is_error": True, "errors": ["max turns"]}
    ) == [
        {"kind": "token_usage", "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
         "cache_write_tokens": 0, "reasoning_tokens": 0},
        {"kind": "completed", "success": False, "result": "max turns"},
    ]  # fmt: skip
    # No is_error at all: fall back to the subtype.
    assert claude_feed({"type": "result", "subtype": "error_during_execution"})[-1] == {
        "kind": "completed",
        "success": False,
    }


def test_claude_rate_limit_event() -> None:
    allowed = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "allowed", "resetsAt": 1784283600, "rateLimitType": "five_hour",
                            "overageStatus": "allowed", "isUsingOverage": False},
    }  # fmt: skip
    rejected = {"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "rateLimitType": "seven_day"}}
    windows = {
        "type": "rate_limit_event",
        "rate_limit_info": {"unifiedWindows": {"five_hour": {"utilization": 0.16, "resetsAt": 1790421000},
                                               "seven_day": {"utilization": 0.81}}},
    }  # fmt: skip
    bare = {"type": "rate_limit_event"}
    events = claude_feed(allowed, rejected, windows, bare)
    assert events == [
        {"kind": "rate_limit", "scope": "claude.five_hour", "resets_at": "2026-07-17T10:20:00Z", "raw": allowed},
        {"kind": "rate_limit", "scope": "claude.seven_day", "used_percent": 100.0, "raw": rejected},
        {"kind": "rate_limit", "scope": "claude.five_hour", "used_percent": 16.0,
         "resets_at": epoch_to_iso(1790421000), "raw": windows},
        {"kind": "rate_limit", "scope": "claude.seven_day", "used_percent": 81.0, "raw": windows},
        {"kind": "unknown", "raw": bare},
    ]  # fmt: skip


def test_epoch_to_iso() -> None:
    assert epoch_to_iso(0) == "1970-01-01T00:00:00Z"
    assert epoch_to_iso(1784283600000) == epoch_to_iso(1784283600)  # milliseconds
    assert epoch_to_iso("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert epoch_to_iso(float("inf")) is None
    assert epoch_to_iso(10**400) is None
    assert epoch_to_iso(True) is None
