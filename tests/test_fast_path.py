"""The mappers' fast path gives exactly what the general path gives: the same events, the same
records, byte for byte the same session files.

`CodexMapper.feed` takes the frequent lines (a started or completed command, a completed agent
message or reasoning item) on a fast path that builds each event and its record (`wire`) in one
pass; `_map` and `AgentEvent.to_dict()` stay the definition. Hypothesis mixes well-formed lines
(which take the fast path) with the same lines holding a wrong type here and there (which must
fall back); the real captures and the benchmark stream go through a real session both ways.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent, mapper_failed
from vik_tui.engine.service.journal import Journal
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits
from vik_tui.engine.stages.session import StageSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from codex_stream import codex_lines as bench_codex_lines

CAPTURES = Path(__file__).parent / "data" / "reference"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The well-formed value four times in five, any JSON value otherwise."""
    return st.one_of(strategy, strategy, strategy, strategy, json_values)


texts = st.text(max_size=20)
statuses = st.sampled_from(["in_progress", "completed", "failed", "declined", "pending", "weird", ""])
commands = st.fixed_dictionaries(
    {
        "id": mostly(texts),
        "type": st.just("command_execution"),
        "command": mostly(texts),
        "aggregated_output": mostly(st.sampled_from(["", "a\n", "ok"]) | texts),
        "exit_code": mostly(st.none() | st.integers(-2, 300)),
        "status": mostly(statuses),
    }
)
messages = st.fixed_dictionaries(
    {"id": mostly(texts), "type": st.sampled_from(["agent_message", "reasoning"]), "text": mostly(texts)}
)
lines = st.fixed_dictionaries(
    {"type": st.sampled_from(["item.started", "item.completed", "item.completed", "item.updated"])},
    optional={"item": mostly(commands | messages)},
)


def slow_feed(mapper: CodexMapper, obj: object) -> list[AgentEvent]:
    """The general path alone, with `feed`'s safety net."""
    try:
        return mapper._map(obj)
    except Exception as exc:
        return mapper_failed(obj, exc, "codex")


@SETTINGS
@given(lines)
def test_codex_fast_path_gives_the_general_paths_events_and_records(line: dict[str, Any]) -> None:
    fast = CodexMapper().feed(line)
    slow = slow_feed(CodexMapper(), line)
    assert fast == slow
    for event, reference in zip(fast, slow, strict=True):
        assert event.to_dict() == reference.to_dict()
        if event.wire is not None:  # the record made in the same pass: what to_dict() says, key order included
            assert list(event.wire.items()) == list(reference.to_dict().items())


ids = st.sampled_from(["t1", "t2"]) | texts
tool_uses = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": mostly(ids),
        "name": mostly(st.sampled_from(["Bash", "Read", "Task", ""])),
        "input": mostly(st.fixed_dictionaries({}, optional={"command": mostly(texts), "path": texts})),
    }
)
text_blocks = st.fixed_dictionaries({"type": st.sampled_from(["text", "text", "thinking"]), "text": mostly(texts)})
tool_results = st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": mostly(ids), "content": mostly(texts)},
    optional={"is_error": mostly(st.booleans())},
)
usage = st.fixed_dictionaries({"input_tokens": st.integers(0, 9), "output_tokens": st.integers(0, 9)})
assistant_lines = st.fixed_dictionaries(
    {
        "type": st.just("assistant"),
        "message": mostly(
            st.fixed_dictionaries(
                {
                    "id": st.sampled_from(["m1", "m2"]),
                    "content": mostly(st.lists(mostly(tool_uses | text_blocks), max_size=3)),
                },
                optional={"usage": usage, "model": st.sampled_from(["claude", "<synthetic>"])},
            )
        ),
    }
)
user_lines = st.fixed_dictionaries(
    {
        "type": st.just("user"),
        "message": mostly(
            st.fixed_dictionaries({"content": mostly(st.lists(mostly(tool_results | text_blocks), max_size=3))})
        ),
    }
)


def slow_claude_feed(mapper: ClaudeMapper, obj: object) -> list[AgentEvent]:
    try:
        return mapper._map(obj)
    except Exception as exc:
        return mapper_failed(obj, exc, "claude_code")


@SETTINGS
@given(st.lists(assistant_lines | user_lines, max_size=8))
def test_claude_fast_path_gives_the_general_paths_events_records_and_state(lines: list[dict[str, Any]]) -> None:
    """A sequence, since the mapper remembers tool calls and usage between lines."""
    fast_mapper, slow_mapper = ClaudeMapper(), ClaudeMapper()
    for line in lines:
        fast = fast_mapper.feed(line)
        slow = slow_claude_feed(slow_mapper, line)
        assert fast == slow
        for event, reference in zip(fast, slow, strict=True):
            if event.wire is not None:
                assert list(event.wire.items()) == list(reference.to_dict().items())
        assert vars_of(fast_mapper) == vars_of(slow_mapper)


def vars_of(mapper: ClaudeMapper) -> tuple[object, ...]:
    return (list(mapper.tools.items()), mapper.last_text, mapper._usage_seen, mapper._reported)


def test_the_frequent_claude_lines_take_the_fast_path() -> None:
    """Assistant text, a Bash call and its result, as in the real capture: records made."""
    from hot_path import claude_lines

    mapper = ClaudeMapper()
    slow = [orjson.loads(raw) for raw in claude_lines(300)]
    made = [event.wire is not None for obj in slow for event in mapper.feed(obj) if event.kind != "token_usage"]
    assert made.count(False) <= 2  # the init line and the result


def test_the_frequent_codex_lines_take_the_fast_path() -> None:
    """Every line of the benchmark stream but the session's few others (thread, turn, token
    count) comes with its record made: the fast path is taken, not only correct."""
    mapper = CodexMapper()
    kinds: dict[str, int] = {}
    for raw in bench_codex_lines(2000):
        obj = orjson.loads(raw)
        for event in mapper.feed(obj):
            key = f"{obj['type']}/{obj.get('item', {}).get('type')}"
            if event.wire is None:
                kinds[key] = kinds.get(key, 0) + 1
    assert set(kinds) <= {"thread.started/None", "turn.started/None", "token_count/None", "turn.completed/None"}


def _session_bytes(data: bytes, tmp_path: Path, name: str, mapper: type = CodexMapper) -> bytes:
    """The session file a real StageSession writes for this stdout (read in pipe-sized chunks)."""
    path = tmp_path / f"{name}.jsonl"
    facts = SessionFacts(issue_id="I-1", stage="work", attempt=1, session_uuid=name, session_file=str(path))
    session = StageSession(facts, ["agent"], tmp_path, "", mapper(), SessionLimits())

    async def read() -> None:
        reader = asyncio.StreamReader(limit=64 * 1024)
        for start in range(0, len(data), 4096):
            reader.feed_data(data[start : start + 4096])
        reader.feed_eof()
        session._stdout = reader  # type: ignore[assignment]
        await session._read_stdout()

    session._file = Journal(path)
    try:
        asyncio.run(read())
    finally:
        session._file.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "name", [*sorted(p.name for p in CAPTURES.glob("codex-*.jsonl")), "benchmark-stream", "odd-lines"]
)
def test_session_files_are_byte_for_byte_those_of_the_general_path(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "benchmark-stream":
        data = b"".join(bench_codex_lines(3000))
    elif name == "odd-lines":  # a wrong type in each field the fast path reads, a huge int, a non-ASCII text
        item = {"id": "c1", "type": "command_execution", "command": "ls", "aggregated_output": "é\n"}
        item["status"] = "completed"
        odd = [dict(item, exit_code=0), dict(item, exit_code=True), dict(item, id=7), dict(item, command=None)]
        odd += [dict(item, aggregated_output=None), dict(item, status=None)]
        data = b"".join(orjson.dumps({"type": "item.completed", "item": i}) + b"\n" for i in odd)
        data += b'{"type":"item.completed","item":' + orjson.dumps(item)[:-1] + b',"exit_code":' + b"9" * 25 + b"}}\n"
        data += b'{"type":"item.completed","item":{"type":"agent_message","text":"\\ud800 \xc3\xa9"}}\n'
    else:
        data = (CAPTURES / name).read_bytes()
    fast = _session_bytes(data, tmp_path, "fast")
    monkeypatch.setattr(CodexMapper, "feed", slow_feed)
    slow = _session_bytes(data, tmp_path, "slow")
    assert fast.count(b"\n") >= data.count(b"\n") - 1
    assert _without_ts(fast) == _without_ts(slow)


@pytest.mark.parametrize("name", [*sorted(p.name for p in CAPTURES.glob("claude_code-*.jsonl")), "benchmark-stream"])
def test_claude_session_files_are_byte_for_byte_those_of_the_general_path(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hot_path import claude_lines

    data = b"".join(claude_lines(3000)) if name == "benchmark-stream" else (CAPTURES / name).read_bytes()
    fast = _session_bytes(data, tmp_path, "fast", ClaudeMapper)
    monkeypatch.setattr(ClaudeMapper, "feed", slow_claude_feed)
    slow = _session_bytes(data, tmp_path, "slow", ClaudeMapper)
    assert _without_ts(fast) == _without_ts(slow)


def _without_ts(data: bytes) -> bytes:
    """The file's bytes with the times of reading blanked: each record's `ts`, a rate limit's
    `observed_at` (the rest of every record, byte for byte)."""
    return re.sub(rb'"(ts|observed_at)": ?"[^"]*"', rb'"\1":""', data)


@pytest.mark.parametrize("ns", [0, 1_767_225_599_999_999_999, 1_767_225_600_000_000_000, 1_767_225_600_123_456_789])
def test_now_iso_is_the_text_datetime_gives(ns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock that stamps every read keeps the text of its second: the same text as
    `datetime.isoformat` (milliseconds, cut not rounded, `Z`), across a second's edge too."""
    from datetime import UTC, datetime

    from vik_tui.engine import clock

    for step in (ns, ns + 1_000_000, ns + 999_000_000):
        monkeypatch.setattr(clock.time, "time_ns", lambda step=step: step)
        moment = datetime.fromtimestamp(step // 1000 / 1e6, UTC)
        assert clock.now_iso() == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("name", ["codex-0.169.0-command-success.jsonl", "codex-0.169.0-429-once-then-success.jsonl"])
def test_lines_taken_as_they_come_make_the_same_session_file(name: str, tmp_path: Path) -> None:
    """A real agent process printing a line at a time, each after the reader went back to waiting:
    the lines take the pipe's direct path (`StageSession._take_whole_lines`, in the selector's
    callback), and the session file is byte for byte what the reading loop writes for them (the
    provider's completion is held for the outcome, the last record, in both)."""
    data = (CAPTURES / name).read_bytes()
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(data)
    script = f"cat >/dev/null; while IFS= read -r line; do printf '%s\\n' \"$line\"; sleep 0.02; done < '{capture}'"
    path = tmp_path / "paced.jsonl"
    facts = SessionFacts(issue_id="I-1", stage="work", attempt=1, session_uuid="paced", session_file=str(path))
    session = StageSession(facts, ["sh", "-c", script], tmp_path, "", CodexMapper(), SessionLimits(60, 60, 1))
    direct: list[int] = []
    take = session._take_whole_lines

    def counted(chunk: bytes) -> bool:
        taken = take(chunk)
        direct.append(taken)
        return taken

    session._take_whole_lines = counted  # type: ignore[method-assign]
    asyncio.run(session.run())
    paced = path.read_bytes()
    general = _session_bytes(data, tmp_path, "general")
    assert sum(direct) >= data.count(b"\n") // 2  # most lines went the direct way
    assert _without_ts(paced.rsplit(b"\n", 2)[0] + b"\n") == _without_ts(general)
