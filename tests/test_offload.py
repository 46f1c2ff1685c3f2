"""Reader processes (`stages/offload.py`): a flood handed to a reader process on another core
writes the same records as the supervisor would, in the same order, once each; nothing is lost
when the reader dies or cannot start; the reader ends with the supervisor, also after kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from chaos_helpers import supervising, wait_until
from conftest import Project, base_workflow, process_running

from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent
from vik_tui.agents.registry import Mapper
from vik_tui.engine.stages import offload
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits
from vik_tui.engine.stages.lines import FoldedFacts, ProviderSignals, folded
from vik_tui.engine.stages.offload import Readers, RecordLines
from vik_tui.engine.stages.session import StageSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from codex_stream import codex_lines
from hot_path import claude_lines


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Codex stream of 60,000 lines (~15 MiB: a few hundred full pipe reads)."""
    path = tmp_path_factory.mktemp("stream") / "codex.jsonl"
    path.write_bytes(b"".join(codex_lines(60_000)))
    return path


@pytest.fixture(scope="module")
def claude_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Claude Code stream of 30,000 lines (text, a tool call, its result; usage on every line)."""
    path = tmp_path_factory.mktemp("stream") / "claude.jsonl"
    path.write_bytes(b"".join(claude_lines(30_000)))
    return path


def _session(
    tmp_path: Path, stream: Path, name: str, readers: Readers | None, mapper: type[Mapper] = CodexMapper
) -> StageSession:
    facts = SessionFacts("I-1", "work", 1, name, str(tmp_path / f"{name}.jsonl"))
    return StageSession(facts, ["cat", str(stream)], tmp_path, "", mapper(), SessionLimits(60, 60, 1), readers=readers)


def _records(session: StageSession) -> list[dict[str, Any]]:
    """The session file's records, without what depends on when they were read or written."""
    data = Path(session.snap.session_file).read_bytes()
    assert data.endswith(b"\n")
    found = [orjson.loads(line) for line in data.splitlines()]
    for record in found:
        record.pop("ts", None)
        record.pop("observed_at", None)  # a rate limit's: when it was read
        outcome = record.get("outcome")
        if isinstance(outcome, dict):
            for key in ("started_at", "ended_at"):
                outcome.pop(key, None)
    return found


async def _local(tmp_path: Path, stream: Path) -> list[dict[str, Any]]:
    session = _session(tmp_path, stream, "local", None)
    snap = await session.run()
    assert snap.state == "completed", snap.reason
    return _records(session)


async def _completes_as(session: StageSession, readers: Readers, expected: list[dict[str, Any]]) -> SessionFacts:
    """Run the session to its end (the readers closed after it): completed, with `expected`."""
    try:
        snap = await session.run()
    finally:
        await readers.close()
    assert snap.state == "completed", snap.reason
    assert _records(session) == expected
    return snap


def _facts(snap: SessionFacts) -> tuple[Any, ...]:
    """What a session's lines fold into, but when its rate limits were read."""
    limits = {scope: {k: v for k, v in seen.items() if k != "observed_at"} for scope, seen in snap.rate_limits.items()}
    return (snap.events, snap.tokens, snap.last_message, limits, snap.agent_session_id, snap.tools_in_flight)


@pytest.mark.parametrize("runtime", ["codex", "claude_code"])
async def test_a_flood_handed_to_a_reader_writes_what_the_supervisor_would(
    tmp_path: Path, stream: Path, claude_stream: Path, runtime: str
) -> None:
    """Byte for byte but the time stamps: the same records in the same order, the same facts,
    and the reader really did the work (it was asked for lanes and answered batches)."""
    mapper: type[Mapper] = CodexMapper if runtime == "codex" else ClaudeMapper
    source = stream if runtime == "codex" else claude_stream
    local = _session(tmp_path, source, "local", None, mapper)
    await local.run()
    expected = _records(local)
    readers = Readers(count=1, own_share=0)  # every flood goes to the reader
    answered: list[int] = []
    session = _session(tmp_path, source, "handed", readers, mapper)
    real_done = session._batch_done

    def counting(head: tuple[Any, ...], records: bytes) -> None:
        answered.append(head[2])
        real_done(head, records)

    session._batch_done = counting  # type: ignore[method-assign]
    snap = await _completes_as(session, readers, expected)
    assert sum(answered) > len(expected) // 2, "the reader mapped most of the stream"
    assert _facts(snap) == _facts(local.snap)
    assert snap.tokens["output"] > 0 and snap.last_message
    assert not readers.pids(), "the reader ended with close()"


async def test_two_readers_share_the_floods(tmp_path: Path, stream: Path) -> None:
    """With two readers allowed (a machine of three CPUs or more), two floods go to two readers,
    each of which writes what the supervisor would."""
    expected = await _local(tmp_path, stream)
    readers = Readers(count=2, own_share=0)
    sessions = [_session(tmp_path, stream, f"two-{i}", readers) for i in range(2)]
    runs = [asyncio.ensure_future(session.run()) for session in sessions]
    seen: set[int] = set()
    try:
        while not all(run.done() for run in runs):
            seen.update(readers.pids())
            await asyncio.sleep(0.005)
    finally:
        await readers.close()
    assert len(seen) == 2
    for session, run in zip(sessions, runs, strict=True):
        assert run.result().state == "completed"
        assert _records(session) == expected


@pytest.mark.parametrize(
    ("sig", "said_so"),
    [
        (signal.SIGKILL, "a reader process ended (it exited)"),
        (signal.SIGSTOP, "answered nothing for 1 s and was killed"),
    ],
)
async def test_a_reader_killed_or_stopped_mid_flood_loses_nothing(
    tmp_path: Path, stream: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, said_so: str
) -> None:
    """kill -9 of the reader while it holds a lane, or SIGSTOP (a wedged reader, given up after
    PATIENCE_SEC without an answer and killed): what it had not answered is mapped by the
    supervisor from the mapper's last state; every record once, in order; the log says so."""
    expected = await _local(tmp_path, stream)
    monkeypatch.setattr(offload, "PATIENCE_SEC", 1.0)
    said: list[tuple[str, str]] = []
    readers = Readers(count=1, own_share=0, log=lambda level, message: said.append((level, message)))
    session = _session(tmp_path, stream, sig.name, readers)
    run = asyncio.ensure_future(session.run())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not (readers.pids() and readers.lanes() and session.snap.events > 2000):
            assert not run.done() and asyncio.get_running_loop().time() < deadline, "no lane was handed over"
            await asyncio.sleep(0.002)
        at_signal, reader = session.snap.events, readers.pids()[0]
        os.kill(reader, sig)
        snap = await run
    finally:
        await readers.close()
    assert snap.state == "completed", snap.reason
    assert at_signal < len(expected) // 2, "the reader was signalled early in the stream"
    assert _records(session) == expected
    assert any(level == "warning" and said_so in message for level, message in said), said
    wait_until(lambda: not process_running(reader), timeout=30, what="the reader to end")


@pytest.mark.parametrize(
    ("interpreter", "said_so"),
    [
        ("no-such-python", "cannot start a reader process: [Errno 2] No such file or directory"),
        ("/bin/false", "a reader process ended (it exited); its sessions are read by the supervisor"),
    ],
)
async def test_a_reader_that_cannot_start_or_dies_at_once_leaves_the_flood_to_the_supervisor(
    tmp_path: Path, stream: Path, monkeypatch: pytest.MonkeyPatch, interpreter: str, said_so: str
) -> None:
    """A missing interpreter, or one that exits before answering anything: the batches sent
    are mapped by the supervisor, no other reader is started, and the log says why once."""
    expected = await _local(tmp_path, stream)
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(offload.sys, "executable", str(tmp_path / interpreter))
    readers = Readers(count=1, own_share=0, log=lambda level, message: said.append((level, message)))
    session = _session(tmp_path, stream, "unstarted", readers)
    await _completes_as(session, readers, expected)
    assert readers.broken is not None
    warnings = [message for level, message in said if level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith(said_so), warnings


async def test_a_reader_that_fails_on_a_batch_fails_the_session_saying_so(
    tmp_path: Path, stream: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line work fails inside the reader (out of memory, a bug): the session ends failed
    with a reason that names the reader, as the supervisor's own reading failure would, and
    what was mapped before it is in the file, whole lines, outcome last."""
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    from offload_mappers import BreaksAfter

    readers = Readers(count=1, own_share=0)
    session = _session(tmp_path, stream, "broken", readers)
    session.mapper = BreaksAfter(20_000)
    try:
        snap = await session.run()
    finally:
        await readers.close()
    assert snap.state == "failed"
    assert snap.reason and snap.reason.startswith("vik-tui's reader process failed mapping the agent's output: ")
    assert "TypeError" in snap.reason
    found = _records(session)
    assert 20_000 <= len(found) < 30_000  # about what the mapper took, not the 60,000 lines
    assert found[-1]["outcome"]["state"] == "failed"


async def test_ctrl_c_in_the_terminal_does_not_end_a_reader() -> None:
    """A reader runs in a session of its own (a terminal's Ctrl-C is the supervisor's to handle)
    and ignores SIGINT: it goes on answering until the supervisor closes its end."""
    readers = Readers(count=1)
    answers: list[tuple[Any, ...]] = []
    lines = b"".join(codex_lines(50))
    try:
        answer = lambda head, _records: answers.append(head)  # noqa: E731
        lane = await readers.lane(CodexMapper(), ProviderSignals(), folded(FoldedFacts()), answer)
        assert lane is not None
        pid = readers.pids()[0]
        assert os.getsid(pid) == pid
        lane.send("2026-12-07T00:00:00.000Z", lines)
        await asyncio.wait_for(lane.drained(), 30)  # it runs (past its imports)
        os.kill(pid, signal.SIGINT)
        lane.send("2026-12-07T00:00:01.000Z", lines)
        await asyncio.wait_for(lane.drained(), 30)
        assert not lane.lost and len(answers) == 2 and answers[1][2] > 0
        assert process_running(pid)
    finally:
        await readers.close()
    assert not readers.pids() and not process_running(pid)


def test_one_flood_stays_and_two_of_three_go() -> None:
    """The balance: one flood alone stays in the supervisor (a reader would cost it more than it
    saves); of several, two in three go to one reader; lanes come back when the floods the
    supervisor kept have ended."""
    readers = Readers(count=1)
    assert [readers._share(floods) for floods in (1, 2, 3, 4, 8, 16)] == [0, 1, 2, 2, 5, 10]
    readers.flooding = 1
    assert not readers.wants_lane()
    readers.flooding = 4
    assert readers.wants_lane()
    assert not Readers(count=0).wants_lane()
    two = Readers(count=2)
    assert [two._share(floods) for floods in (1, 2, 5)] == [0, 1, 4]


def test_when_one_kept_flood_ends_one_lane_goes_back_not_all() -> None:
    """Every lane asks after each batch whether it should go back, and one going back holds its
    lane until its answers came: a lane told yes counts itself out at once, so the others do not
    all see the same surplus and go back together (a 16-agent flood gave all 10 lanes back when
    one of its floods ended, and asked for them again)."""
    readers = Readers(count=1)
    held = 10
    readers.lanes = lambda: held  # type: ignore[method-assign]  # ten lanes open on the reader
    readers.flooding = 6  # the supervisor's own floods: 10 of 16 with the readers is the balance
    assert [readers.give_back() for _ in range(10)] == [False] * 10
    readers.flooding = 3  # three of them ended: 10 of 13 is one more than the slack allows
    told = [readers.give_back() for _ in range(10)]
    assert told == [True] + [False] * 9
    held -= 1  # that lane is closed
    readers.given_back()
    assert not readers.give_back()
    readers.flooding = 0  # the supervisor's floods are all over: of the 9 left, 6 stay with the
    # reader and the slack (two in three, plus one), and 2 go back (floods the supervisor maps)
    assert [readers.give_back() for _ in range(9)] == [True, True] + [False] * 7


@pytest.mark.parametrize(("given", "count"), [("0", 0), ("2", 2), ("", None), ("many", None), ("-1", None)])
def test_vik_tui_readers_sets_the_count(given: str, count: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A count is taken as it is (0: none); anything else is said, and the default used."""
    monkeypatch.setenv("VIK_TUI_READERS", given)
    said: list[tuple[str, str]] = []
    readers = Readers(log=lambda level, message: said.append((level, message)))
    default = max(0, min(len(os.sched_getaffinity(0)) - 1, 3))
    assert readers.count == (default if count is None else count)
    if given in ("many", "-1"):
        assert said == [
            ("warning", f"VIK_TUI_READERS={given!r} is not a count of processes; {default} reader(s) it is")
        ]
    else:
        assert said == []


def test_record_lines_decode_to_the_events_they_were() -> None:
    """A reader's batch reaches listeners as its lines; decoded, they are the mapper's events."""
    mapper = CodexMapper()
    events: list[AgentEvent] = []
    for line in codex_lines(40):
        events += mapper.feed(orjson.loads(line))
    for event in events:
        event.ts = "2026-12-07T00:00:00.000Z"
    lines = b"".join(orjson.dumps(e.to_dict(), option=orjson.OPT_APPEND_NEWLINE) for e in events)
    batch = RecordLines(lines, len(events), [], "2026-12-07T00:00:00.000Z")
    assert len(batch) == len(events)
    assert batch[-1] == AgentEvent.from_record(orjson.loads(lines.splitlines()[-1]))
    assert list(batch) == [AgentEvent.from_record(orjson.loads(line)) for line in lines.splitlines()]


def _flood_workflow(project: Project, stream: Path, issues: int) -> Path:
    agent = project.root / "flood_agent"
    agent.write_text(f"#!/bin/sh\ncat > /dev/null\nexec cat '{stream}'\n")
    agent.chmod(0o755)
    wf = base_workflow(project)
    wf["agents"]["codex"]["command"] = str(agent)
    wf["loop"]["max_issue_concurrency"] = issues
    project.set_issues([{"id": f"F-{i}", "title": f"flood {i}", "state": "todo"} for i in range(1, issues + 1)])
    return project.write(wf)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _reader_pids(supervisor: int) -> list[int]:
    pids = []
    for child in _children(supervisor):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"reader_worker" in cmdline:
            pids.append(child)
    return pids


def test_run_maps_floods_on_a_reader_and_it_ends_with_the_supervisor(project: Project, stream: Path) -> None:
    """A real `vik-tui run` with four flooding agents: a reader process starts (the log says
    which), every session file holds every record, outcome last, and the reader is gone when
    `run` exits."""
    workflow = _flood_workflow(project, stream, 4)
    mapper = CodexMapper()
    expected = sum(len(mapper.feed(orjson.loads(line))) for line in stream.read_bytes().splitlines())
    with supervising(workflow) as supervisor:
        said = wait_until(
            lambda: [e for e in supervisor.events if "reader process" in str(e.get("message"))],
            timeout=60,
            what="a reader process",
        )[0]
        reader = int(str(said["message"]).split()[2])
        assert supervisor.wait(120) == 0
    assert not process_running(reader)
    files = sorted(project.root.rglob("sessions/*/*.jsonl"))
    assert len(files) == 4
    for path in files:
        lines = path.read_bytes().splitlines()
        assert len(lines) == expected
        last = json.loads(lines[-1])
        assert last["kind"] == "completed" and last["outcome"]["state"] == "completed"


def test_kill_9_of_the_supervisor_ends_its_reader(project: Project, stream: Path) -> None:
    """The reader reads the supervisor's socket: when the supervisor dies, it ends too."""
    workflow = _flood_workflow(project, stream, 4)
    with supervising(workflow) as supervisor:
        readers = wait_until(lambda: _reader_pids(supervisor.proc.pid), timeout=60, what="a reader process")
        supervisor.kill()
    wait_until(lambda: not any(process_running(pid) for pid in readers), timeout=30, what="the reader to end")


def test_a_frame_larger_than_the_socket_buffer_arrives_whole() -> None:
    """A reader's answer of several MiB (a batch of long lines) goes out in pieces and arrives
    as the one frame it was."""
    import socket
    import threading

    from vik_tui.engine.stages.frames import HEADER
    from vik_tui.engine.stages.reader_worker import send_frame

    ours, theirs = socket.socketpair()
    payload = bytes(range(256)) * (12 * 4096)  # 12 MiB
    received = bytearray()

    def read() -> None:
        while chunk := ours.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        send_frame(theirs.fileno(), ("done", 7, "x"), payload)
    finally:
        theirs.close()
        reader.join(30)
        ours.close()
    meta_size, payload_size = HEADER.unpack_from(received)
    assert payload_size == len(payload) and len(received) == HEADER.size + meta_size + payload_size
    assert bytes(received[HEADER.size + meta_size :]) == payload
