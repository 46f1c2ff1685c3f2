"""Reading session files back: whole, or only the tail, and never failing on a bad line."""

from __future__ import annotations

import json
from pathlib import Path

from vik_tui.agents.events import Error, Message, Outcome, Unknown
from vik_tui.engine.replay import outcome_of, read_session_records


def write(path: Path, n: int, extra: str = "") -> None:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"kind": "message", "text": f"line {i} " + "x" * (i % 300)}) + "\n")
        handle.write(extra)


def test_tail_matches_full_read_for_many_sizes(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write(path, 20_000, json.dumps({"kind": "outcome", "state": "completed"}) + "\n")
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
    assert isinstance(error, Error) and "not json at all" in error.message and error.ts is None
    assert isinstance(records[4], Unknown) and records[4].raw == {"kind": "from_the_future", "x": 1}  # kept whole
    assert read_session_records(tmp_path / "missing.jsonl") == []
    assert outcome_of(path) is None
