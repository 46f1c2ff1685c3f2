"""Reader processes: the second core for sessions that flood.

One asyncio loop spends ~5 µs of CPU per agent line (decode, map, fold, encode); several agents
printing as fast as they can need more than one core. A session whose reads keep coming back
full (`StageSession`) asks `Readers` for a lane; while it has one, the supervisor still reads the
agent's pipe, cuts the data at its last newline and sends those whole lines to a reader process
(`reader_worker`), which sends back the records exactly as the session file gets them, and the
facts they folded. The supervisor writes the records, publishes them and decides everything, as
for any other session: the session file is the same, byte for byte, whoever did the work.

Only floods are handed over, and only as many as keep the supervisor and the readers about
equally busy (`wants_lane`): at a slow pace a line sent to another process costs more than it
saves. A lane is given back when the flood ends, before a long line, or when its reader dies;
what was sent and not answered is then done by the supervisor itself, from the mapper's state as
of the last answer, so nothing is lost or written twice.

`VIK_TUI_READERS` sets how many reader processes a supervisor may start (default: one per CPU
this process may use, less one, at most 3; 0: none).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import orjson

import vik_tui
from vik_tui.agents import events as ev
from vik_tui.engine.engine_events import Level
from vik_tui.engine.stages.frames import CLOSE, CRASHED, DONE, HEADER, LINES, OPEN, decode_head, frame

READERS_VAR = "VIK_TUI_READERS"
MAX_READERS = 3
# a session floods once this many reads in a row came back full (`FloodWatch`): it may be handed
# to a reader, and asks again every OFFER_EVERY full reads while it is not
FLOOD_READS = 3
OFFER_EVERY = 16
PATIENCE_SEC = 30.0  # a reader silent this long while batches wait for it is given up (`Lane`)
CALM_READS = 8  # reads in a row that were not full: the flood is over (`FloodWatch`)
IN_FLIGHT = 2  # batches a lane may have sent and not had answered (the pipe waits meanwhile)
RECEIVE_BUFFER = 256 * 1024  # answers are received into this (it grows for a longer frame)

Answer = Callable[[tuple[Any, ...], bytes], None]


def reader_count() -> tuple[int, str | None]:
    """How many reader processes this supervisor may start (`VIK_TUI_READERS`), and what is
    wrong with the variable if it is set to something else than a count."""
    default = max(0, min(len(os.sched_getaffinity(0)) - 1, MAX_READERS))
    given = os.environ.get(READERS_VAR, "").strip()
    if not given:
        return default, None
    try:
        count = int(given)
    except ValueError:
        count = -1
    if count < 0:
        return default, f"{READERS_VAR}={given!r} is not a count of processes; {default} reader(s) it is"
    return count, None


class RecordLines(Sequence[ev.AgentEvent]):
    """A handed-over batch's events, known by their session-file lines: decoded only if someone
    reads them (the UI's shown pane); `counted` are the ones the budget count needs, as events."""

    __slots__ = ("_events", "counted", "lines", "size", "ts")

    def __init__(self, lines: bytes, size: int, counted: list[ev.AgentEvent], ts: str) -> None:
        self.lines = lines
        self.size = size
        self.counted = counted
        self.ts = ts  # every record's (the batch was read at once)
        self._events: list[ev.AgentEvent] | None = None

    def __len__(self) -> int:
        return self.size

    def _all(self) -> list[ev.AgentEvent]:
        if self._events is None:
            self._events = [_event(line) for line in self.lines.splitlines()]
        return self._events

    @overload
    def __getitem__(self, index: int) -> ev.AgentEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ev.AgentEvent]: ...
    def __getitem__(self, index: int | slice) -> ev.AgentEvent | Sequence[ev.AgentEvent]:
        if index == -1 and self._events is None:  # the newest (the API's last-event line)
            return _event(self.lines[self.lines.rfind(b"\n", 0, len(self.lines) - 1) + 1 :])
        return self._all()[index]

    def __iter__(self) -> Iterator[ev.AgentEvent]:
        return iter(self._all())


def _event(line: bytes) -> ev.AgentEvent:
    return ev.AgentEvent.from_record(orjson.loads(line))


class FloodWatch:
    """One session's reads, as `Readers` needs to know them: whether it floods (counted in
    `Readers.flooding` while the supervisor maps it) and when it should ask for a lane. A flood
    begins with FLOOD_READS full reads in a row and ends after CALM_READS reads in a row that
    were not full: one short read in a flood (the agent's writes and ours out of step) must not
    take its count away, or the readers would give lanes back to the supervisor and ask again."""

    __slots__ = ("calm", "counted", "full", "readers", "since_offer")

    def __init__(self, readers: Readers) -> None:
        self.readers = readers
        self.full = 0  # full reads in a row
        self.calm = 0  # reads in a row that were not full
        self.counted = False  # in `readers.flooding`
        self.since_offer = 0  # full reads since it last asked for a lane

    def read(self, full: bool) -> bool:
        """After each read the supervisor mapped itself: True when it should ask for a lane."""
        if not full:
            self.full = 0
            self.calm += 1
            if self.calm >= CALM_READS:
                self.ended()
            return False
        self.full += 1
        self.calm = 0
        if not self.counted:
            if self.full < FLOOD_READS:
                return False
            self.counted = True
            self.readers.flooding += 1
            self.since_offer = 0
        else:
            self.since_offer += 1
        return self.since_offer % OFFER_EVERY == 0 and self.readers.wants_lane()

    def handed(self) -> None:
        """It has a lane now: the readers map it."""
        self.ended()
        self.full = 0

    def ended(self) -> None:
        """The flood is over (or the session is): no longer counted."""
        if self.counted:
            self.counted = False
            self.readers.flooding -= 1


class Lane:
    """One session's use of a reader: batches sent in order, answered in order."""

    def __init__(self, reader: _Reader, lane_id: int, mapper: Any, answer: Answer) -> None:
        self.reader = reader
        self.id = lane_id
        self.mapper = mapper  # the mapper's state as of the last answered batch
        self.unanswered: deque[tuple[str, bytes]] = deque()
        self.lost = False  # the reader died: the session takes its batches back
        self.failed: str | None = None  # the reader could not map a batch (out of memory)
        self._answer = answer
        self._changed = asyncio.Event()

    def send(self, ts: str, data: bytes) -> None:
        """Whole lines (`data` ends with a newline), read at `ts`."""
        if not self.unanswered:  # the reader's patience counts from the first batch it owes
            self.reader.owed_since(time.monotonic())
        self.unanswered.append((ts, data))
        self.reader.send(frame((LINES, self.id, ts), data))

    async def room(self) -> None:
        """Until fewer than IN_FLIGHT batches wait for their answer (or the reader is gone)."""
        while len(self.unanswered) >= IN_FLIGHT and not self.lost:
            await self._next_change()

    async def drained(self) -> None:
        """Until every batch sent was answered (or the reader is gone)."""
        while self.unanswered and not self.lost:
            await self._next_change()

    async def _next_change(self) -> None:
        """Until an answer comes or the reader is gone (dead, or given up by `Readers._check_patience`)."""
        self._changed.clear()
        await self._changed.wait()

    def answered(self, head: tuple[Any, ...], records: bytes) -> None:
        if self.lost or not self.unanswered:
            return
        self.unanswered.popleft()
        if head[0] == DONE:
            self.mapper = head[6]  # (DONE, lane, count, counted, folded, signals, mapper, ts)
            try:
                self._answer(head, records)
            except Exception as exc:  # ours, not the reader's: the session fails saying so
                self.failed = f"{type(exc).__name__}: {exc}"
        else:
            self.failed = str(head[2])
        self._changed.set()

    def reader_lost(self) -> None:
        self.lost = True
        self._changed.set()

    def close(self) -> None:
        """The session reads by itself again: later answers are dropped."""
        self.lost = True
        self.reader.close_lane(self)


class _Reader(asyncio.BufferedProtocol):
    """One reader process and the supervisor's end of its socket. Answers are received into one
    buffer of ours (`get_buffer`): a frame's records are copied out of it once, as the bytes
    the session file gets."""

    def __init__(self, on_exit: Callable[[_Reader, str], None]) -> None:
        self.lanes: dict[int, Lane] = {}
        self.alive = True
        self.proc: asyncio.subprocess.Process | None = None
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(RECEIVE_BUFFER)
        self._view = memoryview(self._buffer)
        self._filled = 0  # bytes of unread frames at the start of `_buffer`
        self._on_exit = on_exit
        self.crash: str | None = None  # what the reader said before it ended (a bug of ours)
        self.answered = False  # it answered a batch: it works (one that never did is not tried again)
        self.promised = 0  # lanes it was chosen for and does not hold yet (`Readers.lane`)
        self.last_answer = time.monotonic()  # (or when it started)

    @classmethod
    async def start(cls, on_exit: Callable[[_Reader, str], None]) -> _Reader:
        """Spawn a reader on one end of a new socket pair; raises OSError if it cannot start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reader = cls(on_exit)
        try:
            source = str(Path(vik_tui.__file__).resolve().parent.parent)
            path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
            reader.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from vik_tui.engine.stages.reader_worker import main; main()",
                stdin=theirs.fileno(),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,  # it tells its failures on the socket (CRASHED)
                start_new_session=True,  # a terminal's Ctrl-C is the supervisor's to handle, not its
                env={**os.environ, "PYTHONPATH": path},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        await asyncio.get_running_loop().create_unix_connection(lambda: reader, sock=ours)
        return reader

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        free = len(self._buffer) - self._filled
        if free < RECEIVE_BUFFER // 4:  # a frame longer than the buffer: it grows
            self._buffer.extend(bytes(len(self._buffer)))
            self._view = memoryview(self._buffer)
        return self._view[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        view, start, end = self._view, 0, self._filled
        while end - start >= HEADER.size:
            meta_size, payload_size = HEADER.unpack_from(view, start)
            body = start + HEADER.size
            stop = body + meta_size + payload_size
            if stop > end:
                break
            head = decode_head(view[body : body + meta_size])
            lane = self.lanes.get(head[1])
            if head[0] == CRASHED:
                self.crash = str(head[2])
            elif lane is not None:
                self.answered = True
                self.last_answer = time.monotonic()
                lane.answered(head, view[body + meta_size : stop].tobytes())
            start = stop
        if start:  # the unfinished frame (if any) moves to the front
            self._filled = end - start
            view[: self._filled] = view[start:end]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.crash:
            why = f"it failed: {self.crash}"
        elif exc is None or isinstance(exc, ConnectionResetError | BrokenPipeError):  # (reset: died with data unread)
            why = "it exited"
        else:
            why = f"its socket failed: {exc}"
        self._gone(why)

    # -- the supervisor's side ---------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self._transport is not None and self.alive:
            self._transport.write(data)

    def close_lane(self, lane: Lane) -> None:
        if self.lanes.pop(lane.id, None) is not None:
            self.send(frame((CLOSE, lane.id)))

    @property
    def owes(self) -> bool:
        """Some lane waits for an answer."""
        return any(lane.unanswered for lane in self.lanes.values())

    def owed_since(self, now: float) -> None:
        """A lane sends its first batch since its last answer: if the reader owed nothing
        before, its silence counts from now."""
        if not self.owes:
            self.last_answer = now

    def give_up_if_silent(self) -> None:
        """Kill the process if it answered nothing for PATIENCE_SEC while it owes batches (it is
        stopped or wedged): its lanes are lost, and their sessions map their lines themselves."""
        silent = time.monotonic() - self.last_answer
        if not self.alive or not self.owes or silent < PATIENCE_SEC:
            return
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        if self._transport is not None:
            self._transport.abort()
        self._gone(f"it answered nothing for {silent:.0f} s and was killed")

    def _gone(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        for lane in list(self.lanes.values()):
            lane.reader_lost()
        self.lanes.clear()
        self._on_exit(self, why)

    async def stop(self) -> None:
        """Close its socket (it ends at end of file) and reap it; kill it if it does not end."""
        self.alive = False
        if self._transport is not None:
            self._transport.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Readers:
    """The reader processes of one supervisor, started when a flood first needs one."""

    def __init__(
        self, count: int | None = None, log: Callable[[Level, str], None] | None = None, own_share: int = 1
    ) -> None:
        wrong = None
        if count is None:
            count, wrong = reader_count()
        self.count = count
        self.own_share = own_share  # the supervisor's share of the floods (`_share`); 0: none
        self.flooding = 0  # sessions flooding that the supervisor reads and maps itself
        self._readers: list[_Reader] = []
        self._ids = itertools.count(1)
        self._log = log
        self._starting: list[asyncio.Future[_Reader | None]] = []  # readers being started
        self._closed = False
        self._asked = 0  # lanes asked for and not given yet
        self._returning = 0  # lanes told to go back (`give_back`) and not closed yet
        self._patience: asyncio.TimerHandle | None = None  # the next `_check_patience`
        self.broken: str | None = None  # why no reader can start: floods stay in the supervisor
        if wrong is not None:
            self._say("warning", wrong)

    def lanes(self) -> int:
        """Lanes the live readers hold now."""
        return sum(len(reader.lanes) for reader in self._readers if reader.alive)

    def _share(self, floods: int) -> int:
        """How many of `floods` flooding sessions the readers should map: two for each one the
        supervisor keeps, per reader (a reader maps a line in ~3.9 µs of CPU; the supervisor
        spends ~4.6 on a line it maps and ~1 on one a reader mapped: reading, writing and
        publishing stay with it). One flood alone stays in the supervisor."""
        per = 2 * self.count
        return floods * per // (per + self.own_share)

    def wants_lane(self) -> bool:
        """Hand one more flooding session over? (A session asking is still counted in
        `flooding`, and as a lane already, so that several asking at once do not all get one.)"""
        if self.count == 0 or self.broken is not None or self._closed:
            return False
        lanes = self.lanes()
        return lanes + self._asked < self._share(self.flooding + lanes)

    def give_back(self) -> bool:
        """Should this lane be given back? When the floods the supervisor kept have ended and the
        readers would be left with the rest while the supervisor waits (one lane of slack).
        A lane told yes counts itself out at once (until `given_back`): every lane asks after
        each batch, and a lane going back is held until its answers came, so without that all
        of them would see the same surplus and go back together, and ask again (a 16-agent
        flood handed 10 lanes back when one of its floods ended, and spent a third of its run
        on the churn)."""
        lanes = self.lanes()  # (those going back are floods still: the supervisor's next)
        if lanes - self._returning > self._share(self.flooding + lanes) + 1:
            self._returning += 1
            return True
        return False

    def given_back(self) -> None:
        """A lane `give_back` sent back is closed."""
        self._returning -= 1

    async def lane(self, mapper: Any, signals: Any, folded: tuple[Any, ...], answer: Answer) -> Lane | None:
        """A lane on the least busy reader (one is started if fewer than `count` run); None if
        none can start (said once in the log)."""
        self._asked += 1  # counted as a lane while the reader starts (`wants_lane`)
        try:
            reader = await self._reader()
        finally:
            self._asked -= 1
        if reader is None or not reader.alive:  # (it may have died while it started)
            return None
        reader.promised = max(0, reader.promised - 1)
        lane = Lane(reader, next(self._ids), mapper, answer)
        reader.lanes[lane.id] = lane
        reader.send(frame((OPEN, lane.id, mapper, folded, signals)))
        return lane

    async def _reader(self) -> _Reader | None:
        """The least busy reader; a new one while fewer than `count` run or start and each
        running one has a lane already; else one that is starting."""
        alive = [reader for reader in self._readers if reader.alive]
        # (a reader just started is promised to the lane that started it, and its start is over
        # before its future leaves `_starting`: a second flood asking meanwhile starts another)
        idle = any(not reader.lanes and not reader.promised for reader in alive)
        pending = sum(not future.done() for future in self._starting)
        if not idle and len(alive) + pending < self.count:
            starting = asyncio.ensure_future(self._start())
            self._starting.append(starting)
            starting.add_done_callback(self._starting.remove)
        elif alive:
            chosen = min(alive, key=lambda reader: len(reader.lanes) + reader.promised)
            chosen.promised += 1
            return chosen
        return await asyncio.shield(self._starting[-1])

    def _check_patience(self) -> None:
        """Every PATIENCE_SEC / 4 while readers run: give up a silent one (`give_up_if_silent`):
        one timer for all lanes, not one per wait for an answer."""
        self._patience = None
        for reader in list(self._readers):
            reader.give_up_if_silent()
        if self._readers and not self._closed:
            self._schedule_patience()

    def _schedule_patience(self) -> None:
        self._patience = asyncio.get_running_loop().call_later(PATIENCE_SEC / 4, self._check_patience)

    async def _start(self) -> _Reader | None:
        try:
            reader = await _Reader.start(self._exited)
        except OSError as exc:
            self.broken = f"cannot start a reader process: {exc}"
            self._say("warning", f"{self.broken}; floods are read by the supervisor alone")
            return None
        if self._closed:
            await reader.stop()
            return None
        self._readers.append(reader)
        reader.promised += 1  # to the lane that started it
        if self._patience is None:
            self._schedule_patience()
        assert reader.proc is not None
        self._say("info", f"reader process {reader.proc.pid} started: floods are mapped on another core too")
        return reader

    def _exited(self, reader: _Reader, why: str) -> None:
        if reader in self._readers:
            self._readers.remove(reader)
        if self._closed:
            return
        message = f"a reader process ended ({why}); its sessions are read by the supervisor"
        if not reader.answered:  # it cannot work here: no more are started
            self.broken = f"a reader process ended before it answered ({why})"
            message += "; no other reader is started"
        self._say("warning", message)

    def _say(self, level: Level, message: str) -> None:
        if self._log is not None:
            self._log(level, message)

    def pids(self) -> list[int]:
        """The reader processes running now."""
        return [r.proc.pid for r in self._readers if r.alive and r.proc is not None]

    async def close(self) -> None:
        """Stop every reader (at the supervisor's end; sessions are over by then)."""
        self._closed = True
        if self._patience is not None:
            self._patience.cancel()
            self._patience = None
        readers, self._readers = self._readers, []
        await asyncio.gather(*(reader.stop() for reader in readers), return_exceptions=True)
