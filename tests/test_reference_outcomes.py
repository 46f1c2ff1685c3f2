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
from vik_tui.engine.session import SessionLimits, SessionSnapshot, StageSession

CAPTURES = Path(__file__).parent / "data" / "reference"
HIGH_DEMAND = "We\u2019re currently experiencing high demand, which may cause temporary errors."

# capture, exit code of the real run, expected state, expected reason (prefix), tokens in/out/cache_read
CASES = [
    ("codex-0.169.0-command-success.jsonl", 0, "completed", "completed", (240, 90, 24)),
    ("codex-0.169.0-429-once-then-success.jsonl", 0, "completed", "completed", (603, 126, 69)),
    ("codex-0.169.0-500-every-request.jsonl", 1, "failed", HIGH_DEMAND, (0, 0, 0)),
    ("claude_code-2.1.197-tool-use-success.jsonl", 0, "completed", "completed", None),
    ("claude_code-2.1.197-not-logged-in.jsonl", 1, "failed", "Not logged in · Please run /login", (0, 0, 0)),
    (
        "claude_code-2.1.197-overloaded-529-retries-then-gives-up.jsonl",
        1,
        "failed",
        "API Error: 529 Overloaded",
        (0, 0, 0),
    ),
    ("claude_code-2.1.197-max-turns-1.jsonl", 1, "failed", "Reached maximum number of turns (1)", (101, 12, 1003)),
]


@pytest.mark.parametrize(("capture", "exit_code", "state", "reason", "tokens"), CASES, ids=[c[0] for c in CASES])
async def test_capture_ends_as_the_reference_says(
    tmp_path: Path, capture: str, exit_code: int, state: str, reason: str, tokens: tuple[int, int, int] | None
) -> None:
    runtime = "codex" if capture.startswith("codex") else "claude_code"
    adapter = adapter_for(runtime)
    command = [str(FAKES / "replay_capture"), str(CAPTURES / capture), str(exit_code)]
    snap = SessionSnapshot("ISS-1", "plan", 1, "u1", str(tmp_path / "plan-u1.jsonl"))
    session = StageSession(
        snap, command, tmp_path, "prompt", adapter.new_mapper(), SessionLimits(60, 60, 1), executable_label="agent"
    )
    await session.run()
    assert snap.state == state, snap.reason
    assert (snap.reason or "").startswith(reason), snap.reason
    if tokens is not None:
        assert (snap.tokens["input"], snap.tokens["output"], snap.tokens["cache_read"]) == tokens
    records = [json.loads(line) for line in Path(snap.session_file).read_text().splitlines()]
    assert records[-1]["kind"] == "outcome" and records[-1]["state"] == state
    if state == "failed":
        assert snap.last_message is None or not snap.last_message.startswith(("API Error", "Not logged in"))
