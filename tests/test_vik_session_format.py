"""Our session files read as vik's: every line parses as vik's `AgentEvent`.

vik (`src/agent/response.rs`) writes one serde enum per line, tagged by `kind`, and a tool built
on that enum must be able to read our files. The pydantic models below restate that enum in our
own words, with serde's rules: each variant's fields have exact names and types (`String` is a
string, never null; `u64` an integer from 0 to 2^64-1, never a float or a bool; `Option<_>` may be
null or missing; `Value` is required but may be null; `DateTime<Utc>` is an RFC 3339 time),
unknown fields are ignored, and a `kind` that is not a variant is an error.

Then real fake-agent processes run every scenario we know (success, failure, cancel, timeout,
stall, garbage output, hook failures before the agent, both runtimes, and every real capture),
and every line of every session file they leave must parse.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from conftest import FAKE_CLAUDE, FAKE_CODEX, FAKES, Project, base_workflow
from engine_helpers import Harness
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vik_tui.agents.events import Outcome
from vik_tui.agents.registry import adapter_for
from vik_tui.config.schema import AgentConfig
from vik_tui.engine import engine_events as ee
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits, StopCause
from vik_tui.engine.stages.replay import outcome_of
from vik_tui.engine.stages.session import StageSession

CAPTURES = Path(__file__).parent / "data" / "reference"

# --- vik's AgentEvent, restated ----------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: str) -> str:
    """What chrono's `DateTime<Utc>` deserializer accepts: a full date-time with an offset."""
    if not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return value


U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Rfc3339 = Annotated[str, AfterValidator(_rfc3339)]


class _Variant(BaseModel):
    """serde's defaults: extra fields ignored; values must have the declared JSON type."""

    model_config = ConfigDict(extra="ignore", strict=True)


class VikSessionStarted(_Variant):
    kind: Literal["session_started"]
    session_id: str


class VikMessage(_Variant):
    kind: Literal["message"]
    text: str


class VikTokenUsage(_Variant):
    kind: Literal["token_usage"]
    input: U64
    output: U64
    cache_read: U64


class VikRateLimit(_Variant):
    kind: Literal["rate_limit"]
    scope: str
    remaining: U64
    reset_at: Rfc3339
    observed_at: Rfc3339


class VikToolCall(_Variant):
    kind: Literal["tool_call"]
    call_id: str | None = None
    name: str | None = None
    phase: Literal["request", "result"]
    input: Any = None
    output: Any = None
    raw: Any  # serde_json::Value: required, null allowed


class VikSubagent(_Variant):
    kind: Literal["subagent"]
    call_id: str | None = None
    action: str
    status: str | None = None
    target_ids: list[str]
    raw: Any


class VikUnknown(_Variant):
    kind: Literal["unknown"]
    event_type: str | None = None
    raw: Any


class VikCompleted(_Variant):
    kind: Literal["completed"]


class VikError(_Variant):
    kind: Literal["error"]
    detail: str


VikAgentEvent = TypeAdapter(
    Annotated[
        VikSessionStarted
        | VikMessage
        | VikTokenUsage
        | VikRateLimit
        | VikToolCall
        | VikSubagent
        | VikUnknown
        | VikCompleted
        | VikError,
        Field(discriminator="kind"),
    ]
)


def parse_line(line: str) -> BaseModel:
    """One session-file line as vik reads it (serde also refuses a field given twice)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate field in {line[:200]}"
        return dict(pairs)

    return VikAgentEvent.validate_python(json.loads(line, object_pairs_hook=no_duplicates))


def test_the_model_is_vik_s_enum() -> None:
    """Shapes vik itself writes parse; renamed, missing, mistyped fields and unknown kinds do not."""
    accepted = [
        {"kind": "session_started", "session_id": "S-1"},
        {"kind": "message", "text": "done", "ts": "extra fields are ignored"},
        {"kind": "token_usage", "input": 120, "output": 45, "cache_read": 12},
        {"kind": "rate_limit", "scope": "codex:tokens_per_min", "remaining": 42,
         "reset_at": "2026-05-16T10:15:30Z", "observed_at": "2026-05-16T10:00:00.123+00:00"},
        {"kind": "tool_call", "call_id": None, "name": None, "phase": "result", "input": None, "output": "x",
         "raw": {"type": "user"}},
        {"kind": "tool_call", "phase": "request", "raw": None},
        {"kind": "subagent", "call_id": "t", "action": "Task", "status": None, "target_ids": [], "raw": {}},
        {"kind": "unknown", "event_type": None, "raw": [1, 2]},
        {"kind": "completed", "success": True},
        {"kind": "error", "detail": "key must be a string at line 1 column 2"},
    ]  # fmt: skip
    for record in accepted:
        VikAgentEvent.validate_python(record)
    rejected = [
        {"kind": "outcome", "state": "completed"},  # not a vik kind
        {"kind": "token_usage", "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0},  # renamed
        {"kind": "token_usage", "input": 1.0, "output": 1, "cache_read": 0},  # u64 is not a float
        {"kind": "token_usage", "input": -1, "output": 1, "cache_read": 0},
        {"kind": "token_usage", "input": True, "output": 1, "cache_read": 0},
        {"kind": "tool_call", "call_id": "c", "status": "started", "raw": None},  # no phase
        {"kind": "tool_call", "phase": "started", "raw": None},
        {"kind": "tool_call", "phase": "request"},  # raw is required
        {"kind": "subagent", "action": "Task", "raw": {}},  # target_ids is required
        {"kind": "error", "message": "x", "fatal": True},
        {"kind": "session_started", "session_id": None},
        {"kind": "message", "text": 5},
        {"kind": "rate_limit", "scope": "s", "remaining": 1, "reset_at": "tomorrow", "observed_at": "2026-05-16"},
        {"text": "no kind"},
    ]
    for record in rejected:
        with pytest.raises(ValidationError):
            VikAgentEvent.validate_python(record)
    with pytest.raises(AssertionError, match="duplicate field"):
        parse_line('{"kind": "message", "text": "a", "text": "b"}')


# --- scenarios: real processes, real session files -------------------------------------------


def session(tmp_path: Path, runtime: str, command: list[str], limits: SessionLimits | None = None) -> StageSession:
    snap = SessionFacts("ISS-1", "plan", 1, "u1", str(tmp_path / "sessions" / "plan-u1.jsonl"))
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    adapter = adapter_for(runtime)
    return StageSession(snap, command, workdir, "prompt", adapter.new_mapper(), limits or SessionLimits(60, 60, 0.5))


def fake(runtime: str, **args: Any) -> list[str]:
    exe = str(FAKE_CODEX if runtime == "codex" else FAKE_CLAUDE)
    flags = {f"--{name}": value for name, value in args.items()}  # vik forwards keys as written
    return adapter_for(runtime).build_command(AgentConfig(runtime=runtime, model="m", command=exe, args=flags))


def replay(capture: Path, exit_code: int = 0) -> list[str]:
    return [str(FAKES / "replay_capture"), str(capture), str(exit_code)]


async def run_to_end(s: StageSession) -> list[Path]:
    await s.run()
    return [Path(s.snap.session_file)]


async def cancelled(tmp: Path) -> list[Path]:
    """Cancelled by the user once the agent said something (it would work for an hour)."""
    s = session(tmp, "codex", fake("codex", mode="cooperative"))
    task = asyncio.ensure_future(s.run())
    while s.snap.last_message is None:
        await asyncio.sleep(0.02)
    s.stop(StopCause.CANCEL, "cancelled by user")
    await task
    assert s.snap.state == "cancelled"
    return [Path(s.snap.session_file)]


def everything_capture(runtime: str, path: Path) -> Path:
    """Lines of every shape the mapper knows (and some it does not), in our own words."""
    if runtime == "codex":
        lines: list[Any] = [
            {"type": "thread.started", "thread_id": "T-1"},
            {"type": "turn.started"},
            {"type": "item.completed", "item": {"id": "r", "type": "reasoning", "text": "thinking"}},
            {"type": "item.updated", "item": {"id": "t", "type": "todo_list", "items": [{"text": "a"}]}},
            {"type": "item.started", "item": {"id": "m", "type": "mcp_tool_call", "server": "gh", "tool": "search",
                                              "arguments": {"q": "x"}, "status": "in_progress"}},
            {"type": "item.completed", "item": {"id": "m", "type": "mcp_tool_call", "server": "gh", "tool": "search",
                                                "arguments": {"q": "x"}, "status": "completed",
                                                "result": {"content": [{"type": "text", "text": "3"}]}}},
            {"type": "item.completed", "item": {"id": "f", "type": "file_change", "status": "completed",
                                                "changes": [{"path": "a.py", "kind": "update"}]}},
            {"type": "item.started", "item": {"id": "w", "type": "web_search", "query": "q"}},
            {"type": "item.started", "item": {"id": "c", "type": "collab_tool_call", "tool": "spawn_agent",
                                              "receiver_thread_ids": ["T-2"], "prompt": "help",
                                              "status": "in_progress"}},
            {"type": "item.completed", "item": {"id": "c", "type": "collab_tool_call", "tool": "spawn_agent",
                                                "receiver_thread_ids": ["T-2"], "status": "completed"}},
            {"type": "token_count", "rate_limits": {"primary": {"used_percent": 12.5, "resets_at": 1900000000},
                                                    "secondary": {"used_percent": 3}}},
            {"type": "item.completed", "item": {"id": "e", "type": "error", "message": "rerouted"}},
            {"type": "error", "message": "Reconnecting... 1/5 (timeout)"},
            {"type": "brand.new.event", "x": 1},
            [1, 2, 3],
            "a bare string",
            {"type": "item.completed", "item": {"id": "a", "type": "agent_message", "text": "all done"}},
            {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 4, "output_tokens": 2}},
        ]  # fmt: skip
    else:
        lines = [
            {"type": "system", "subtype": "init", "session_id": "S-1", "model": "m", "cwd": "/w"},
            {"type": "system", "subtype": "init", "model": "m"},  # no id: not a session_started
            {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 3, "error_status": 529},
            {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed", "resetsAt": 1900000000}},
            {"type": "rate_limit_event", "rate_limit_info": {"unifiedWindows": {
                "five_hour": {"utilization": 0.5, "resetsAt": 1900000000}, "seven_day": {"utilization": 0.1}}}},
            {"type": "assistant", "message": {"id": "m1", "content": [
                {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "looking"},
                {"type": "tool_use", "id": "t1", "name": "Task", "input": {"subagent_type": "Explore"}},
                {"type": "tool_use", "id": "t2", "name": "Edit", "input": {"file_path": "a.py"}},
                {"type": "server_tool_use", "id": "s"}], "usage": {"input_tokens": 5, "output_tokens": 1}}},
            {"type": "user", "message": {"content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "found"},
                {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
                 "content": [{"type": "text", "text": "no"}]},
                {"type": "text", "text": "a user note"}]}},
            {"type": "assistant",
             "message": {"model": "<synthetic>", "content": [{"type": "text", "text": "API Error"}]}},
            {"type": "stream_event", "event": {}},
            {"type": "result", "subtype": "success", "is_error": False, "result": "a different summary",
             "modelUsage": {"m": {"inputTokens": 9, "outputTokens": 3}}},
        ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json at all {\n")
    return path


Scenario = Callable[[Path], Awaitable[list[Path]]]


def capture_scenarios() -> dict[str, Scenario]:
    """Every real CLI capture, replayed by a process that exits as the real one did."""
    out: dict[str, Scenario] = {}
    for capture in sorted(CAPTURES.glob("*.jsonl")):
        runtime = "codex" if capture.name.startswith("codex") else "claude_code"
        code = 0 if "success" in capture.name else 1

        async def scenario(tmp: Path, capture: Path = capture, runtime: str = runtime, code: int = code) -> list[Path]:
            return await run_to_end(session(tmp, runtime, replay(capture, code)))

        out[f"capture:{capture.stem}"] = scenario
    return out


async def supervisor_failures(tmp: Path) -> list[Path]:
    """Stages that fail before any agent starts (after_create, before_run, the prompt): the file
    holds only the outcome, and it must still be vik's."""
    project = Project(tmp / "proj")
    project.root.mkdir(parents=True)
    project.set_issues(
        [
            {"id": "A", "title": "a", "state": "todo"},
            {"id": "B", "title": "b", "state": "review"},
            {"id": "C", "title": "c", "state": "broken"},
        ]
    )
    wf = base_workflow(project)
    wf["issue"]["hooks"] = {"after_create": "test {{ issue.id }} != C || exit 4"}
    wf["issue"]["stages"] = {
        "plan": {"when": {"state": "todo"}, "agent": "codex", "prompt": "x", "hooks": {"before_run": "exit 3"}},
        "review": {"when": {"state": "review"}, "agent": "codex", "prompt": "{{ issue.nope }}"},
        "fix": {"when": {"state": "broken"}, "agent": "codex", "prompt": "x"},
    }
    h = Harness(project.write(wf)).start()
    await h.finish()
    finished = h.named(ee.StageFinished)
    assert sorted(e.state for e in finished) == ["failed"] * 3
    return [Path(e.session_file) for e in finished if e.session_file]


async def supervisor_shutdown(tmp: Path) -> list[Path]:
    """A running stage stopped by the supervisor's shutdown (cancelled)."""
    project = Project(tmp / "proj")
    project.root.mkdir(parents=True)
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.StageStarted)
    await h.stop()
    return [Path(e.session_file) for e in h.named(ee.StageFinished) if e.session_file]


SCENARIOS: dict[str, Scenario] = {
    "codex:success": lambda t: run_to_end(session(t, "codex", fake("codex", lines=2))),
    "codex:turn_failed": lambda t: run_to_end(session(t, "codex", fake("codex", mode="turn_failed"))),
    "codex:exit_nonzero": lambda t: run_to_end(session(t, "codex", fake("codex", mode="exit_nonzero"))),
    "codex:exit_early": lambda t: run_to_end(session(t, "codex", fake("codex", mode="exit_early"))),
    "codex:killed_by_signal": lambda t: run_to_end(session(t, "codex", fake("codex", mode="die_by_signal"))),
    "codex:reconnecting": lambda t: run_to_end(session(t, "codex", fake("codex", mode="reconnecting"))),
    "codex:garbage": lambda t: run_to_end(session(t, "codex", fake("codex", mode="garbage"))),
    "codex:cancel": cancelled,
    "codex:timeout": lambda t: run_to_end(session(t, "codex", fake("codex", mode="hang"), SessionLimits(0.6, 60, 0.3))),
    "codex:stall": lambda t: run_to_end(session(t, "codex", fake("codex", mode="stall"), SessionLimits(60, 0.4, 0.3))),
    "codex:not_found": lambda t: run_to_end(session(t, "codex", [str(t / "no-such-agent")])),
    "codex:every_shape": lambda t: run_to_end(session(t, "codex", replay(everything_capture("codex", t / "c.jsonl")))),
    "claude:success": lambda t: run_to_end(session(t, "claude_code", fake("claude_code"))),
    "claude:subagent": lambda t: run_to_end(session(t, "claude_code", fake("claude_code", mode="task"))),
    "claude:not_logged_in": lambda t: run_to_end(session(t, "claude_code", fake("claude_code", mode="not_logged_in"))),
    "claude:every_shape": lambda t: run_to_end(
        session(t, "claude_code", replay(everything_capture("claude_code", t / "c.jsonl")))
    ),
    "claude:stall_after_retries": lambda t: run_to_end(
        session(
            t,
            "claude_code",
            [
                "sh",
                "-c",
                f"cat >/dev/null; head -3 {CAPTURES / 'claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl'}"
                "; exec sleep 30",
            ],
            SessionLimits(60, 0.4, 0.3),
        )
    ),
    "supervisor:failures_before_the_agent": supervisor_failures,
    "supervisor:shutdown": supervisor_shutdown,
    **capture_scenarios(),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_every_line_of_every_session_file_is_a_vik_agent_event(tmp_path: Path, name: str) -> None:
    files = await SCENARIOS[name](tmp_path)
    assert files and all(path.is_file() for path in files), name
    kinds: list[str] = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines, f"{path} is empty"
        for number, line in enumerate(lines, 1):
            try:
                kinds.append(type(parse_line(line)).__name__)
            except ValidationError as exc:
                message = f"{name}: {path.name}:{number} is not a vik AgentEvent: {exc}\n{line[:300]}"
                raise AssertionError(message) from None
        # the outcome is the last line, in a kind vik knows, and our reader finds it there
        final = json.loads(lines[-1])
        assert final["kind"] in ("completed", "error") and isinstance(final.get("outcome"), dict), lines[-1]
        outcome = outcome_of(path)
        assert isinstance(outcome, Outcome) and outcome.state == final["outcome"]["state"]
        assert (final["kind"] == "completed") == (outcome.state == "completed")
        assert sum(1 for line in lines if '"outcome"' in line and json.loads(line).get("outcome")) == 1
    assert kinds


async def test_the_scenarios_reach_every_vik_kind(tmp_path: Path) -> None:
    """The check above is only worth something if our files use every kind vik has."""
    seen: set[str] = set()
    for runtime in ("codex", "claude_code"):
        capture = everything_capture(runtime, tmp_path / f"{runtime}.jsonl")
        files = await run_to_end(session(tmp_path / runtime, runtime, replay(capture)))
        seen |= {json.loads(line)["kind"] for line in files[0].read_text().splitlines()}
    assert seen == {
        "session_started", "message", "token_usage", "rate_limit", "tool_call", "subagent", "unknown", "completed",
        "error",
    }  # fmt: skip
