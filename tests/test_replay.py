"""Reading session files back: whole, or only the tail, and never failing on a bad line."""

from __future__ import annotations

import json
from pathlib import Path

from vik_tui.agents.events import Error, Message, Outcome, TokenUsage, Unknown
from vik_tui.engine.stages.replay import outcome_of, read_session_records


def write(path: Path, n: int, extra: str = "") -> None:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"kind": "message", "text": f"line {i} " + "x" * (i % 300)}) + "\n")
        handle.write(extra)


def test_tail_matches_full_read_for_many_sizes(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write(path, 20_000, json.dumps({"kind": "completed", "outcome": {"state": "completed"}}) + "\n")
    full = read_session_records(path)
    assert len(full) == 20_001
    for limit in (1, 2, 10, 999, 5000, 20_001, 50_000):
        assert read_session_records(path, limit) == full[-limit:]
    assert all(isinstance(e, Message) for e in full[:-1]) and full[3].text == "line 3 xxx"
    assert outcome_of(path) == Outcome(state="completed")


def test_bad_lines_become_error_records_and_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write(path, 3, 'not json at all\n\n[1, 2]\n{"kind": "from_the_future", "x": 1}\n')
    records = read_session_records(path, 10)
    assert [r.kind for r in records] == ["message", "message", "message", "error", "unknown"]
    error = records[3]
    assert isinstance(error, Error) and "not json at all" in error.detail and error.ts is None
    assert isinstance(records[4], Unknown) and records[4].raw == {"kind": "from_the_future", "x": 1}  # kept whole
    assert read_session_records(tmp_path / "missing.jsonl") == []
    assert outcome_of(path) is None


def test_outcome_is_read_from_vik_records_and_from_older_files(tmp_path: Path) -> None:
    """The outcome rides on a final vik `completed`/`error` record; files written before this
    vocabulary ended with an `outcome` line and keep their history."""
    tokens = {"input": 10, "output": 2, "cache_read": 3, "cache_write": 1, "reasoning": 0}
    failed = {"kind": "error", "detail": "boom", "outcome": {"state": "failed", "reason": "boom", "exit_code": 1,
              "signal": None, "tokens": tokens, "started_at": "a", "ended_at": "b"}, "ts": "b"}  # fmt: skip
    old = {"kind": "outcome", "state": "cancelled", "reason": "cancelled by user", "tokens": {"input": 4}}
    for record, expected in (
        (
            failed,
            Outcome(state="failed", reason="boom", exit_code=1, tokens=tokens, started_at="a", ended_at="b", ts="b"),
        ),
        (old, Outcome(state="cancelled", reason="cancelled by user", tokens={"input": 4})),
    ):
        path = tmp_path / "s.jsonl"
        path.write_text(json.dumps({"kind": "message", "text": "hi"}) + "\n" + json.dumps(record) + "\n")
        assert outcome_of(path) == expected
    done = Outcome(state="completed", reason="completed", exit_code=0, tokens=tokens, result="the summary", ts="c")
    assert Outcome.from_record(done.to_dict()) == done  # written and read back the same
    assert done.to_dict()["kind"] == "completed" and done.to_dict()["result"] == "the summary"
    provider_error = tmp_path / "p.jsonl"
    provider_error.write_text(json.dumps({"kind": "error", "detail": "x", "fatal": True}) + "\n")
    assert outcome_of(provider_error) is None  # an error without `outcome` is the agent's, not ours


def test_older_field_names_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps({"kind": "token_usage", "input_tokens": 5, "output_tokens": 2, "cache_read_tokens": 1}) + "\n"
        + json.dumps({"kind": "error", "message": "old", "fatal": False}) + "\n"
        + json.dumps({"kind": "completed", "success": False, "result": "not logged in"}) + "\n"
    )  # fmt: skip
    usage, error, failure = read_session_records(path)
    assert failure == Error(detail="not logged in", fatal=True)
    assert isinstance(usage, TokenUsage) and (usage.input, usage.output, usage.cache_read) == (5, 2, 1)
    assert isinstance(error, Error) and error.detail == "old"
