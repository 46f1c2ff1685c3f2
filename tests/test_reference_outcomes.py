"""Each real CLI capture, printed by a real process, ends in the outcome shared/reference says.

The adapters' event mapping is checked line by line in test_adapters.py; this checks the whole
path (pipe → mapper → session file → outcome decision) on the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAKES

from vik_tui.agents.registry import adapter_for
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits
from vik_tui.engine.stages.session import StageSession

CAPTURES = Path(__file__).parent / "data" / "reference"
HIGH_DEMAND = "We\u2019re currently experiencing high demand, which may cause temporary errors."

# capture, exit code of the real run, expected state, expected reason (prefix), tokens in our meaning
# (input/output/cache_read/cache_write: input counts the cached tokens for both runtimes; Claude's
# totals come from `modelUsage`, which counts the side requests `usage` leaves out)
CASES = [
    ("codex-0.169.0-command-success.jsonl", 0, "completed", "completed", (240, 90, 24, 0)),
    ("codex-0.169.0-429-once-then-success.jsonl", 0, "completed", "completed", (603, 126, 69, 0)),
    ("codex-0.169.0-500-every-request.jsonl", 1, "failed", HIGH_DEMAND, (0, 0, 0, 0)),
    ("claude_code-2.1.197-tool-use-success.jsonl", 0, "completed", "completed", (150 + 15, 60, 15, 0)),
    ("claude_code-2.1.197-not-logged-in.jsonl", 1, "failed", "Not logged in · Please run /login", (0, 0, 0, 0)),
    (
        "claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl",
        1,
        "failed",
        "API Error: 529 Overloaded",
        (0, 0, 0, 0),
    ),
    (
        "claude_code-2.1.197-max-turns-1.jsonl",
        1,
        "failed",
        "Reached maximum number of turns (1)",
        (108 + 1003 + 7, 15, 1003, 7),
    ),
    (
        "codex-0.169.0-no-network-killed-after-25s.jsonl",
        1,
        "failed",
        "exited with code 1",
        (0, 0, 0, 0),
    ),
]


def run_session(tmp_path: Path, capture: str, exit_code: int, limits: SessionLimits | None = None) -> StageSession:
    runtime = "codex" if capture.startswith("codex") else "claude_code"
    adapter = adapter_for(runtime)
    command = [str(FAKES / "replay_capture"), str(CAPTURES / capture), str(exit_code)]
    snap = SessionFacts("ISS-1", "plan", 1, "u1", str(tmp_path / "plan-u1.jsonl"))
    return StageSession(
        snap,
        command,
        tmp_path,
        "prompt",
        adapter.new_mapper(),
        limits or SessionLimits(60, 60, 1),
        executable_label="agent",
    )


def silent_after(tmp_path: Path, text: str, runtime: str, limits: SessionLimits) -> StageSession:
    """A real process that prints `text` (capture lines) and then stays silent without exiting."""
    capture = tmp_path / "capture.jsonl"
    capture.write_text(text)
    script = tmp_path / "agent.sh"
    script.write_text(f"#!/bin/sh\ncat > /dev/null\ncat {capture}\nexec sleep 60\n")
    script.chmod(0o755)
    snap = SessionFacts("ISS-1", "plan", 1, "u1", str(tmp_path / "plan-u1.jsonl"))
    return StageSession(snap, [str(script)], tmp_path, "p", adapter_for(runtime).new_mapper(), limits)


def records_of(session: StageSession) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(session.snap.session_file).read_text().splitlines()]


@pytest.mark.parametrize(("capture", "exit_code", "state", "reason", "tokens"), CASES, ids=[c[0] for c in CASES])
async def test_capture_ends_as_the_reference_says(
    tmp_path: Path, capture: str, exit_code: int, state: str, reason: str, tokens: tuple[int, int, int, int]
) -> None:
    session = run_session(tmp_path, capture, exit_code)
    snap = await session.run()
    assert snap.state == state, snap.reason
    assert (snap.reason or "").startswith(reason), snap.reason
    assert tuple(snap.tokens[k] for k in ("input", "output", "cache_read", "cache_write")) == tokens
    records = records_of(session)
    final = records[-1]
    # vik's reader accepts the last line: `completed` (the one completion of a good run) or `error`
    assert final["kind"] == ("completed" if state == "completed" else "error")
    outcome = final["outcome"]
    assert isinstance(outcome, dict) and outcome["state"] == state
    assert outcome["tokens"] == dict(zip(("input", "output", "cache_read", "cache_write"), tokens, strict=True)) | {
        "reasoning": outcome["tokens"]["reasoning"]
    }
    assert sum(1 for r in records if r["kind"] == "completed") == (1 if state == "completed" else 0)
    if state == "failed":
        assert final["detail"] == snap.reason
        assert snap.last_message is None or not snap.last_message.startswith(("API Error", "Not logged in"))


async def test_final_answer_is_stored_once(tmp_path: Path) -> None:
    """The answer is the last message; the completion does not repeat it (a 1 MB answer would
    otherwise be stored twice)."""
    for capture in ("codex-0.169.0-command-success.jsonl", "claude_code-2.1.197-tool-use-success.jsonl"):
        session = run_session(tmp_path / capture, capture, 0)
        await session.run()
        text = Path(session.snap.session_file).read_text()
        assert text.count("DONE: the work is finished.") == 1, capture


async def test_stall_after_retry_notices_names_the_last_one(tmp_path: Path) -> None:
    """The no-network capture: Codex only retried, then went quiet; the stall says why."""
    text = (CAPTURES / "codex-0.169.0-no-network-killed-after-25s.jsonl").read_text()
    session = silent_after(tmp_path, text, "codex", SessionLimits(60, 0.5, 1))
    snap = session.snap
    await session.run()
    assert snap.state == "failed"
    assert snap.reason == (
        "stalled: no output for 0.5s (loop.stall_timeout_sec); last retry notice: "
        "Reconnecting... waiting for network (Connection failed: error sending request)"
    )


async def test_timeout_after_claude_api_retries_names_the_last_one(tmp_path: Path) -> None:
    lines = (CAPTURES / "claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl").read_text().splitlines()
    # init and the first three api_retry notices
    session = silent_after(tmp_path, "\n".join(lines[:4]) + "\n", "claude_code", SessionLimits(0.5, 60, 1))
    snap = session.snap
    await session.run()
    assert snap.reason == (
        "stage timed out after 0.5s (loop.stage_timeout_sec); last retry notice: "
        "API retry 3/10 (529 overloaded) next in 2.0s"
    )


async def test_claude_tokens_kept_when_stopped_before_result(tmp_path: Path) -> None:
    """The assistant lines carry each API call's usage: a run stopped before `result` keeps it."""
    lines = (CAPTURES / "claude_code-2.1.197-tool-use-success.jsonl").read_text().splitlines()
    session = silent_after(tmp_path, "\n".join(lines[:-1]) + "\n", "claude_code", SessionLimits(60, 0.5, 1))
    snap = session.snap
    await session.run()
    assert snap.state == "failed" and snap.reason.startswith("stalled")
    # two API calls of (50 fresh + 5 cached) in, 1 out each; the same id's repeat is not counted twice
    assert (snap.tokens["input"], snap.tokens["output"], snap.tokens["cache_read"]) == (110, 2, 10)
    assert records_of(session)[-1]["outcome"]["tokens"]["input"] == 110  # type: ignore[index]
