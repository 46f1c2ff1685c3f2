"""How a flooding session's lines reach its file and its listeners: each batch is one write of
exactly its events' records (the bytes the listeners get), every record once, in the file's
order, also when the session is stopped while it yields to the loop in the middle of a read."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent
from vik_tui.engine.service.journal import Journal
from vik_tui.engine.stages import session as session_mod
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits
from vik_tui.engine.stages.session import StageSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from codex_stream import codex_lines

Batch = tuple[list[AgentEvent], bytes]


def _session(tmp_path: Path, batches: list[Batch]) -> StageSession:
    path = tmp_path / "s.jsonl"
    facts = SessionFacts(issue_id="I-1", stage="work", attempt=1, session_uuid="u", session_file=str(path))

    def on_events(_session: StageSession, events: list[AgentEvent], lines: bytes) -> None:
        batches.append((list(events), lines))

    session = StageSession(facts, ["agent"], tmp_path, "", CodexMapper(), SessionLimits(), on_events=on_events)
    session._file = Journal(path)
    return session


def _reader(chunks: list[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=session_mod.READ_CHUNK)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


def test_each_batch_is_one_write_of_its_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three pipe-sized reads of a flood, in slices: every batch's bytes are one write to the
    file (the file holds nothing else), one line per event, and together they are the file."""
    writes: list[bytes] = []
    commit = Journal._commit

    def counted(journal: Journal, data: bytes | bytearray) -> None:
        writes.append(bytes(data))
        commit(journal, data)

    monkeypatch.setattr(Journal, "_commit", counted)
    size = session_mod.READ_CHUNK
    data = b"".join(codex_lines(3000))[: 3 * size]
    data = data[: data.rindex(b"\n") + 1]  # whole lines: the three reads end with the stream
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    batches: list[Batch] = []
    session = _session(tmp_path, batches)

    async def read() -> None:
        session._stdout = _reader(chunks)  # type: ignore[assignment]
        await session._read_stdout()

    asyncio.run(read())
    session._file.close()  # type: ignore[union-attr]
    written = Path(session.snap.session_file).read_bytes()
    assert len(batches) >= len(chunks) == 3
    assert [lines for _events, lines in batches] == writes  # a batch, a write: no copy waits in a buffer
    assert b"".join(writes) == written
    for events, lines in batches:
        assert len(events) == lines.count(b"\n") and lines.endswith(b"\n")
        assert [orjson.loads(line)["kind"] for line in lines.splitlines()] == [e.to_dict()["kind"] for e in events]
    assert session.snap.events == written.count(b"\n") == sum(len(events) for events, _ in batches)


def test_stopped_while_yielding_mid_read_keeps_what_it_took(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session yields to the loop inside a read (every FAIR_LINES lines here); cancelled
    there, the lines it had taken are still written and published, once each."""
    monkeypatch.setattr(session_mod, "FAIR_SLICE_SEC", 0.0)  # yield after every FAIR_LINES lines
    data = b"".join(codex_lines(1000))[: session_mod.READ_CHUNK]
    batches: list[Batch] = []
    session = _session(tmp_path, batches)

    async def read() -> None:
        session._stdout = _reader([data])  # type: ignore[assignment]
        task = asyncio.ensure_future(session._read_stdout())
        for _ in range(3):  # the reader takes FAIR_LINES lines and yields, three times
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(read())
    session._file.close()  # type: ignore[union-attr]
    written = Path(session.snap.session_file).read_bytes()
    records = written.splitlines()
    assert 0 < len(records) < data.count(b"\n")  # stopped in the middle of the read
    assert b"the output ended in the middle of a line" in records[-1]  # the read's last, unfinished line
    assert len(records) - 1 == 3 * session_mod.FAIR_LINES  # three slices taken (one record per line here)
    assert b"".join(lines for _events, lines in batches) == written
    assert session.snap.events == len(records) == sum(len(events) for events, _ in batches)
