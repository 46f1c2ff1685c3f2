"""SessionTexts, the one owner of the session text on screen: records go in, lines come out.

A real session file (JSON lines, as the engine appends them) is read back through the engine's
own reader (`replay.read_session_records`); no Textual here: the store is plain Python.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Project, base_workflow

from vik_tui.agents.events import AgentEvent, Message, ToolCall
from vik_tui.config.loader import load_workflow
from vik_tui.engine.engine_events import AgentEvents, EngineEvent
from vik_tui.engine.stages.replay import read_session_records
from vik_tui.engine.supervisor import Supervisor
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.session_text import KEEP, KEEP_LINES, KEEP_MIN, REPLAY_LIMIT, SessionTexts

NOW = "2026-01-02T03:04:05.000Z"


def said(*texts: str) -> list[AgentEvent]:
    """Agent messages one millisecond apart (equal time stamps would make equal records)."""
    return [Message(text=text, ts=f"2026-01-02T03:04:05.{n:03d}Z") for n, text in enumerate(texts)]


def append(path: Path, records: list[AgentEvent]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict()) + "\n")


def texts_of(reads: list[str] | None = None) -> SessionTexts:
    async def read(session_file: str, limit: int) -> list[AgentEvent]:
        if reads is not None:
            reads.append(session_file)
        return read_session_records(session_file, limit)

    return SessionTexts(read, FrozenClock(NOW), UNICODE)


def shown_text(lines: list[str]) -> list[str]:
    return [line.split("  ", 1)[1] for line in lines]


async def test_live_records_during_a_replay_are_merged_once(tmp_path: Path) -> None:
    session = tmp_path / "plan-1.jsonl"
    records = said("one", "two", "three")
    append(session, records[:2])
    texts = texts_of()
    text = texts.open("u1", str(session), 80)
    # "two" was in the file and arrives live too (the replay read the file after it was written)
    texts.receive(str(session), records[1:])
    assert texts.take_new(text) == []  # nothing before the replay
    assert await texts.replay(text)
    assert shown_text(texts.all_lines(text)) == ["one", "two", "three"]
    texts.receive(str(session), [Message(text="four", ts=NOW)])
    assert shown_text(texts.take_new(text)) == ["four"]
    assert texts.take_new(text) == []


async def test_records_of_a_session_not_opened_are_not_kept(tmp_path: Path) -> None:
    session = tmp_path / "plan-1.jsonl"
    append(session, said("one"))
    texts = texts_of()
    texts.receive(str(session), said("one"))  # nobody asked for it: it stays in the file
    assert len(texts) == 0
    text = texts.open("u1", str(session), 80)
    assert await texts.replay(text)
    assert shown_text(texts.all_lines(text)) == ["one"]


async def test_a_kept_session_not_shown_is_dropped_when_its_records_pile_up(tmp_path: Path) -> None:
    shown, hidden = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    shown.touch()
    hidden.touch()
    reads: list[str] = []
    texts = texts_of(reads)
    back = texts.open("b", str(hidden), 80)
    assert await texts.replay(back)
    on_screen = texts.open("a", str(shown), 80)
    texts.shown = "a"
    many = [Message(text=f"line {i}", ts=NOW) for i in range(REPLAY_LIMIT + 1)]
    texts.receive(str(shown), many)
    texts.receive(str(hidden), many)
    assert texts.get("a") is on_screen  # the shown one takes its records every frame
    assert texts.get("b") is None  # re-read from its file when shown again
    assert not texts.kept(back)


async def test_at_most_keep_sessions_and_lines_are_bounded(tmp_path: Path) -> None:
    texts = texts_of()
    opened = []
    for i in range(KEEP + 2):
        path = tmp_path / f"s{i}.jsonl"
        path.touch()
        opened.append(texts.open(f"u{i}", str(path), 80))
    assert len(texts) == KEEP
    assert [texts.get(f"u{i}") for i in range(2)] == [None, None]  # the least recently opened went
    last = opened[-1]
    texts.shown = last.session_uuid  # on screen: never dropped for what it receives
    assert await texts.replay(last)
    for _ in range(3):
        texts.receive(last.session_file, [Message(text="x", ts=NOW)] * REPLAY_LIMIT)
        texts.take_new(last)
    assert REPLAY_LIMIT <= len(last.lines) <= 2 * REPLAY_LIMIT
    assert len(texts.all_lines(last)) == REPLAY_LIMIT


async def test_kept_sessions_are_bounded_by_their_lines_too(tmp_path: Path) -> None:
    texts = texts_of()
    for i in range(KEEP_MIN + 10):
        path = tmp_path / f"s{i}.jsonl"
        path.touch()
        text = texts.open(f"u{i}", str(path), 80)
        text.lines = ["x"] * (KEEP_LINES // 10)  # a replayed session of a tenth of the budget
    assert len(texts) == 11  # checked as one opens (before its replay): ten full, the newest on top
    assert texts.get(f"u{KEEP_MIN + 9}") is not None and texts.get("u0") is None
    for i in range(KEEP_MIN + 10, KEEP_MIN + 20):
        path = tmp_path / f"s{i}.jsonl"
        path.touch()
        texts.open(f"u{i}", str(path), 80).lines = ["x"] * KEEP_LINES  # huge ones: KEEP_MIN stay anyway
    assert len(texts) == KEEP_MIN


async def test_a_session_dropped_during_its_replay_is_not_revived(tmp_path: Path) -> None:
    session = tmp_path / "plan-1.jsonl"
    append(session, said("one"))
    texts = texts_of()
    text = texts.open("u1", str(session), 80)
    texts.drop(text)
    assert not await texts.replay(text)
    assert texts.get("u1") is None


async def test_an_unreadable_session_becomes_one_error_line(tmp_path: Path) -> None:
    async def read(session_file: str, limit: int) -> list[AgentEvent]:
        raise PermissionError(f"cannot open {session_file}")

    texts = SessionTexts(read, FrozenClock(NOW), UNICODE)
    text = texts.open("u1", str(tmp_path / "gone.jsonl"), 80)
    assert await texts.replay(text)
    (line,) = texts.all_lines(text)
    assert "[error] cannot replay the session: cannot open" in line


async def test_live_records_of_a_real_codex_session_equal_their_copies_read_back(project: Project) -> None:
    """A live event carries vik's form of its record (`vik`); read back from the file it carries
    the record as written. They are the same event: when every live record arrived during the
    replay, the pane shows each once (it showed tool calls twice before)."""
    project.set_issues([{"id": "S-1", "title": "streams", "state": "todo"}])
    data = base_workflow(project)
    data["agents"]["codex"]["args"] = {"--mode": "success", "--lines": 2}
    loaded = load_workflow(project.write(data))
    assert loaded.workflow is not None
    supervisor = Supervisor(loaded.workflow, loaded.path, watch=False)
    live: dict[str, list[AgentEvent]] = {}

    def listen(event: EngineEvent) -> None:
        if isinstance(event, AgentEvents):
            live.setdefault(event.session_file, []).extend(event.records)

    supervisor.subscribe(listen)
    await supervisor.run()  # max_iterations 1: one cycle, its stage to the end
    (session_file, records), *_ = live.items()
    assert sum(isinstance(record, ToolCall) for record in records) == 4  # 2 commands, started + done
    texts = SessionTexts(supervisor.session_records, FrozenClock(NOW), UNICODE)
    text = texts.open("u1", session_file, 100)
    texts.receive(session_file, records)  # all of it arrived while the file was read back
    assert await texts.replay(text)
    alone = SessionTexts(supervisor.session_records, FrozenClock(NOW), UNICODE)
    only_replayed = alone.open("u2", session_file, 100)
    assert await alone.replay(only_replayed)
    assert texts.all_lines(text) == alone.all_lines(only_replayed)


async def test_a_reader_batch_is_decoded_only_when_its_session_is_read(tmp_path: Path) -> None:
    """A reader process's batch (`RecordLines`: its session-file lines) kept for a session that
    is not on screen stays undecoded; once the session is shown, it reads as the records were."""
    from vik_tui.engine.stages.offload import RecordLines

    session = tmp_path / "plan-1.jsonl"
    session.write_text("")
    texts = texts_of()
    text = texts.open("u1", str(session), 80)
    assert await texts.replay(text)
    records = said("one", "two")
    batch = RecordLines(b"".join(json.dumps(r.to_dict()).encode() + b"\n" for r in records), 2, [], NOW)
    texts.shown = "another session"
    texts.receive(str(session), batch)
    assert text.waiting == 2 and batch._events is None  # kept, not decoded
    texts.shown = "u1"
    assert shown_text(texts.take_new(text)) == ["one", "two"]
    assert text.waiting == 0
