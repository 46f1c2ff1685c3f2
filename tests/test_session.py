"""Outcome rules and process lifecycle of one stage session, with real fake-agent processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import FAKE_CLAUDE, FAKE_CODEX, process_running

from vik_tui.agents import events as ev
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.registry import adapter_for
from vik_tui.config.schema import AgentConfig
from vik_tui.engine.processes.proc import group_alive
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits, StopCause
from vik_tui.engine.stages.session import StageSession


def make_session(
    tmp_path: Path,
    runtime: str = "codex",
    args: dict | None = None,
    command: str | None = None,
    limits: SessionLimits | None = None,
    prompt: str = "do the thing",
    env: dict | None = None,
) -> StageSession:
    exe = command or str(FAKE_CODEX if runtime == "codex" else FAKE_CLAUDE)
    agent = AgentConfig(runtime=runtime, model="m", args=args or {}, command=exe)
    adapter = adapter_for(runtime)
    snap = SessionFacts("ISS-1", "plan", 1, "u1", str(tmp_path / "sessions" / "plan-u1.jsonl"))
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    full_env = dict(os.environ, **(env or {}))
    return StageSession(
        snap,
        adapter.build_command(agent),
        workdir,
        prompt,
        adapter.new_mapper(),
        limits or SessionLimits(60, 60, 1),
        env=full_env,
        executable_label=agent.executable,
    )


def records(session: StageSession) -> list[dict]:
    return [json.loads(line) for line in Path(session.snap.session_file).read_text().splitlines()]


def outcome(session: StageSession) -> dict:
    """The session's outcome: the `outcome` object of its last record (a vik `completed`/`error`)."""
    return records(session)[-1]["outcome"]


async def test_codex_success_is_completed_with_tokens(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--lines": 2})
    snap = await session.run()
    assert snap.state == "completed", snap.reason
    assert snap.tokens == {"input": 240, "output": 90, "cache_read": 24, "cache_write": 0, "reasoning": 16}
    recs = records(session)
    assert recs[0]["kind"] == "session_started"
    assert recs[-1]["kind"] == "completed" and recs[-1]["outcome"]["state"] == "completed"
    assert [r["kind"] for r in recs].count("completed") == 1  # the provider's completion is the outcome record
    assert recs[-1]["outcome"]["exit_code"] == 0 and recs[-1]["outcome"]["tokens"]["input"] == 240
    assert [r["status"] for r in recs if r["kind"] == "tool_call"] == ["started", "completed"] * 2
    assert snap.last_message == "DONE: the work is finished."
    assert all("ts" in r for r in recs)


async def test_claude_success_and_not_logged_in(tmp_path: Path) -> None:
    ok = await make_session(tmp_path, runtime="claude_code").run()
    assert ok.state == "completed" and ok.tokens["input"] == 110 and ok.tokens["output"] == 40
    (tmp_path / "b").mkdir()
    bad = await make_session(tmp_path / "b", runtime="claude_code", args={"--mode": "not_logged_in"}).run()
    assert bad.state == "failed"
    assert bad.reason == "Not logged in · Please run /login"
    assert bad.exit_code == 1


async def test_reconnecting_errors_do_not_end_the_run(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--mode": "reconnecting"})
    snap = await session.run()
    assert snap.state == "completed"
    errors = [r for r in records(session) if r["kind"] == "error"]
    assert len(errors) == 2 and all(not e["fatal"] for e in errors)


@pytest.mark.parametrize(
    ("mode", "reason_part", "exit_code", "sig"),
    [
        ("turn_failed", "model refused: context window exceeded", 1, None),
        ("exit_nonzero", "exited with code 3; stderr: fatal: something broke badly", 3, None),
        ("exit_early", "exited with code 0 before completing; stderr: bye before completing", 0, None),
        ("die_by_signal", "killed by signal SIGKILL; stderr: about to be killed", None, signal.SIGKILL),
    ],
)
async def test_failures_carry_exit_status_and_stderr(
    tmp_path: Path, mode: str, reason_part: str, exit_code, sig
) -> None:
    session = make_session(tmp_path, args={"--mode": mode})
    snap = await session.run()
    assert snap.state == "failed"
    assert reason_part in snap.reason
    assert snap.exit_code == exit_code
    assert snap.signal == sig
    final = records(session)[-1]
    assert final["kind"] == "error" and reason_part in final["detail"]
    assert final["outcome"]["state"] == "failed" and reason_part in final["outcome"]["reason"]


async def test_undecodable_line_is_recorded_and_skipped(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--mode": "garbage"})
    snap = await session.run()
    assert snap.state == "completed"
    notices = [r for r in records(session) if r.get("event_type") == "vik_tui.undecodable_line"]
    assert any("undecodable output line" in e["detail"] and "this is not json" in e["detail"] for e in notices)
    # vik's `unknown` form: a reader applying vik's rules does not call this completed session failed
    assert all(r["kind"] == "unknown" for r in notices)
    assert not [r for r in records(session) if r["kind"] == "error"]


async def test_ten_megabyte_line_is_handled(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--mode": "big_line"})
    snap = await session.run()
    assert snap.state == "completed"
    big = [r for r in records(session) if r["kind"] == "message" and len(r.get("text", "")) >= 10 * 1024 * 1024]
    assert len(big) == 1


def replay_agent(tmp_path: Path, lines: list[bytes]) -> str:
    """An agent that prints `lines` as they are (`cat` of a file): any stream, a real process."""
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"".join(lines))
    agent = tmp_path / "agent"
    agent.write_text(f"#!/bin/sh\nexec cat '{stream}'\n")
    agent.chmod(0o755)
    return str(agent)


@pytest.mark.parametrize("decodable", [True, False], ids=["json", "garbage"])
async def test_thirty_megabyte_single_line_is_read(tmp_path: Path, decodable: bool) -> None:
    """A line far beyond any chunk size arrives whole: as its record, or as one error record."""
    text = "z" * (30 * 1024 * 1024)
    message = {"type": "item.completed", "item": {"id": "big", "type": "agent_message", "text": text}}
    big = json.dumps(message).encode() if decodable else b"{not json " + text.encode()
    agent = replay_agent(
        tmp_path,
        [
            b'{"type":"thread.started","thread_id":"t-1"}\n',
            big + b"\n",
            b'{"type":"item.completed","item":{"id":"m","type":"agent_message","text":"after"}}\n',
            b'{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":2}}\n',
        ],
    )
    session = make_session(tmp_path, command=agent)
    snap = await session.run()
    assert snap.state == "completed", snap.reason
    recs = records(session)
    assert [r["kind"] for r in recs] == [
        "session_started",
        "message" if decodable else "unknown",  # our notice, in vik's `unknown` form
        "message",
        "token_usage",
        "completed",  # the provider's completion, carrying the outcome
    ]
    if decodable:
        assert recs[1]["text"] == text
    else:
        assert recs[1]["detail"].startswith("undecodable output line skipped (")
        assert recs[1]["detail"].endswith(": {not json " + "z" * 190)
        assert recs[1]["fatal"] is False
    assert snap.last_message == "after" and snap.tokens["output"] == 2


async def test_blank_and_partial_last_lines(tmp_path: Path) -> None:
    """Blank lines are skipped, CRLF is fine, and a last line without a newline still counts."""
    agent = replay_agent(
        tmp_path,
        [
            b'{"type":"thread.started","thread_id":"t-1"}\r\n',
            b"\n   \n",
            b'{"type":"item.completed","item":{"id":"m","type":"agent_message","text":"done"}}\n',
            b'{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":2}}',
        ],
    )
    session = make_session(tmp_path, command=agent)
    snap = await session.run()
    assert snap.state == "completed", snap.reason
    assert [r["kind"] for r in records(session)] == [
        "session_started",
        "message",
        "token_usage",
        "completed",
    ]


async def test_events_callback_gets_the_recorded_events(tmp_path: Path) -> None:
    """The listener sees AgentEvent objects, stamped, in file order, the outcome last, each batch
    with the very bytes written for it (one line per event: the API streams them as they are)."""
    from vik_tui.agents import events as ev

    seen: list[ev.AgentEvent] = []
    written: list[bytes] = []

    def on_events(_session: object, batch: list[ev.AgentEvent], lines: bytes) -> None:
        assert lines.count(b"\n") == len(batch) and lines.endswith(b"\n")
        seen.extend(batch)
        written.append(lines)

    session = make_session(tmp_path, args={"lines": 2})
    session.on_events = on_events
    await session.run()
    assert all(isinstance(e, ev.AgentEvent) and e.ts for e in seen)
    assert [e.to_dict() for e in seen] == records(session)
    assert b"".join(written) == Path(session.snap.session_file).read_bytes()
    assert isinstance(seen[-1], ev.Outcome) and seen[-1].state == "completed"


async def test_large_prompt_written_without_deadlock(tmp_path: Path) -> None:
    out = tmp_path / "prompt.txt"
    prompt = "p" * (8 * 1024 * 1024)
    session = make_session(tmp_path, prompt=prompt, env={"FAKE_PROMPT_OUT": str(out)})
    snap = await session.run()
    assert snap.state == "completed"
    assert out.stat().st_size == len(prompt)


async def test_missing_executable_fails_at_once(tmp_path: Path) -> None:
    agent = AgentConfig(runtime="codex", model="m")
    adapter = adapter_for("codex")
    snap = SessionFacts("I", "plan", 1, "u", str(tmp_path / "s.jsonl"))
    (tmp_path / "w").mkdir()
    session = StageSession(
        snap,
        adapter.build_command(agent),
        tmp_path / "w",
        "x",
        adapter.new_mapper(),
        SessionLimits(),
        env={"PATH": str(tmp_path)},
        executable_label=agent.executable,
    )
    result = await session.run()
    assert result.state == "failed"
    assert result.reason == "`codex` not found on PATH"
    assert outcome(session)["reason"] == "`codex` not found on PATH"


async def test_cancel_cooperative_agent(tmp_path: Path) -> None:
    import asyncio

    session = make_session(tmp_path, args={"--mode": "cooperative"})
    task = asyncio.ensure_future(session.run())
    while session.snap.last_message != "working until told to stop":
        await asyncio.sleep(0.02)
    pid = session.snap.pid
    session.stop(StopCause.CANCEL, "cancelled by user")
    snap = await task
    assert snap.state == "cancelled" and snap.reason == "cancelled by user"
    assert not group_alive(pid)


async def test_stubborn_agent_and_grandchild_leave_nothing_behind(tmp_path: Path) -> None:
    import asyncio

    child_pid_file = tmp_path / "child.pid"
    session = make_session(
        tmp_path,
        args={"--mode": "hang"},
        env={"FAKE_CHILD_PID": str(child_pid_file)},
        limits=SessionLimits(60, 60, 0.5),
    )
    task = asyncio.ensure_future(session.run())
    while not (child_pid_file.exists() and child_pid_file.read_text() and session.snap.tools_in_flight):
        await asyncio.sleep(0.02)
    grandchild = int(child_pid_file.read_text())
    pid = session.snap.pid
    session.stop(StopCause.CANCEL, "cancelled by user")
    snap = await task
    assert snap.state == "cancelled"
    assert not group_alive(pid)
    assert not process_running(grandchild)


async def test_stall_timeout_kills_and_fails(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--mode": "stall"}, limits=SessionLimits(60, 0.5, 0.5))
    snap = await session.run()
    assert snap.state == "failed"
    assert snap.reason.startswith("stalled: no output for 0.5s (loop.stall_timeout_sec)")
    assert not group_alive(snap.pid)


async def test_stall_clock_is_paused_while_a_tool_runs(tmp_path: Path) -> None:
    """A command silent for longer than the stall limit is not a stall: its agent waits on it."""
    session = make_session(tmp_path, args={"--mode": "long_tool", "--sleep": 3.5}, limits=SessionLimits(60, 1.5, 0.5))
    snap = await session.run()
    assert snap.state == "completed", snap.reason


async def test_stage_timeout_still_bounds_a_tool_in_flight(tmp_path: Path) -> None:
    # the stall limit (1.5 s) is far above a fake agent's start-up even on a loaded machine, and far
    # below the stage limit (4 s): only a paused stall clock lets the stage limit be the one that ends it
    session = make_session(tmp_path, args={"--mode": "hang"}, limits=SessionLimits(4.0, 1.5, 0.3))
    snap = await session.run()
    assert snap.state == "failed"
    assert snap.reason.startswith("stage timed out after 4s (loop.stage_timeout_sec)")


async def test_stage_timeout_kills_and_fails(tmp_path: Path) -> None:
    session = make_session(tmp_path, args={"--mode": "hang"}, limits=SessionLimits(0.7, 60, 0.3))
    snap = await session.run()
    assert snap.state == "failed"
    assert snap.reason.startswith("stage timed out after 0.7s (loop.stage_timeout_sec)")
    assert not group_alive(snap.pid)


async def test_terminal_state_never_changes(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    snap = await session.run()
    assert snap.state == "completed"
    session.stop(StopCause.CANCEL, "too late")
    assert snap.state == "completed"
    assert sum(1 for r in records(session) if "outcome" in r) == 1


def _planted_bug(*_args: object) -> list[ev.AgentEvent]:
    raise ValueError("planted mapper bug")


class _RaisingMapper(CodexMapper):
    """A planted bug: the mapper raises on every completed item (inside the `feed` safety net),
    on the fast path of the frequent lines and on the general one."""

    FAST_PATH = dict.fromkeys(CodexMapper.FAST_PATH, _planted_bug)

    def _map(self, obj: object) -> list[ev.AgentEvent]:
        if isinstance(obj, dict) and obj.get("type") == "item.completed":
            raise ValueError("planted mapper bug")
        return super()._map(obj)


class _RaisingFeed(CodexMapper):
    """A planted bug past the safety net: `feed` itself raises; the session catches it."""

    def feed(self, obj: object) -> list[ev.AgentEvent]:
        if isinstance(obj, dict) and obj.get("type") == "item.completed":
            raise ValueError("planted mapper bug")
        return super().feed(obj)


@pytest.mark.parametrize("mapper", [_RaisingMapper, _RaisingFeed])
async def test_a_mapper_bug_is_recorded_not_swallowed_nor_a_failure(tmp_path: Path, mapper: type) -> None:
    """The provider line stays as vik's `unknown`, a notice names the exception, and neither
    the session nor a reader applying vik's rules (first `completed`/`error` decides) fails it."""
    session = make_session(tmp_path)
    session.mapper = mapper()
    snap = await session.run()
    assert snap.state == "completed", snap.reason
    recs = records(session)
    notices = [r for r in recs if r.get("event_type") == "vik_tui.mapper_error"]
    assert notices and all(r["kind"] == "unknown" for r in notices)
    assert all("ValueError('planted mapper bug')" in r["detail"] for r in notices)
    kept = [r for r in recs if r["kind"] == "unknown" and isinstance(r.get("raw"), dict)]
    assert any(r["raw"].get("type") == "item.completed" for r in kept)  # the line, whole
    first_verdict = next(r["kind"] for r in recs if r["kind"] in ("completed", "error"))
    assert first_verdict == "completed"
    replayed = [ev.AgentEvent.from_record(r) for r in notices]
    assert all(isinstance(e, ev.Error) and not e.fatal for e in replayed)  # our UI shows it as a warning
