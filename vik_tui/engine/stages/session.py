"""One stage session: spawn the agent CLI, stream its JSONL, record everything, decide the outcome.

Rules (docs/architecture.md §3, outcome): the terminal state is decided once. Completed needs a provider completion
and no provider-reported failure. Exit before completion, a non-zero exit, or death by signal
fail with the exit status and the stderr tail. An undecodable line is recorded and skipped.
A failure of our own reading (MemoryError on a huge line) fails the session naming it.
Every stop (cancel, timeout, stall, shutdown, reconcile) kills the whole process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as signal_mod
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vik_tui.agents import events as ev
from vik_tui.agents.registry import Mapper
from vik_tui.engine.clock import now_iso
from vik_tui.engine.processes.cgroups import StageCgroup
from vik_tui.engine.processes.descendants import MARK_VAR, describe_killed, kill_marked
from vik_tui.engine.processes.pipes import PipeReader, pipe
from vik_tui.engine.processes.proc import kill_group
from vik_tui.engine.service.journal import Journal, describe_os_error, json_line
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits, StopCause
from vik_tui.engine.stages.lines import LONG_LINE_BYTES, LineWork, ProviderSignals, fold_into, folded, stdlib_dumps
from vik_tui.engine.stages.offload import CALM_READS, FloodWatch, Lane, Readers, RecordLines
from vik_tui.engine.view import SessionState

STDERR_TAIL_BYTES = 4096
# One stdout read takes at most what one pipe holds (64 KiB, ~250 Codex lines); the reader
# buffers up to twice that before it stops reading the pipe (back-pressure).
READ_CHUNK = 64 * 1024
STREAM_LIMIT = 64 * 1024
# Fairness: a session whose output keeps coming yields to the loop once it has run this long
# (about what parsing the old 16 KiB read took), checked every FAIR_LINES lines, so the loop
# (other sessions, the UI) waits ~this per busy session. Longer slices measured no CPU gain and
# a 3x loop lag with 8 flooding agents; the old yield per 16 KiB read also cost a read each time.
FAIR_SLICE_SEC = 0.0002
FAIR_LINES = 32
PIPE_DRAIN_SEC = 2.0
# a handed-over session reads by itself again after this many small reads in a row (the flood
# is over: a line sent to another process costs more than it saves), or before a line this long
SMALL_READ = 4096
HANDED_LINE_MAX = 4 * READ_CHUNK
# one stdout line longer than this is not kept: an `error` record says it was cut, and reading
# goes on with the next line (docs/runtimes-and-outcomes.md "Limits, stops and retries")
MAX_LINE_BYTES = 64 * 1024 * 1024
# the watchdog woke this much later than it asked: the process was stopped, not the agent silent
PAUSE_GAP_SEC = 1.0
SSH_FAILED = 255  # `ssh`'s own exit status when the connection failed or dropped


class RemoteEnd(Protocol):
    """The far end of a session whose agent runs on an SSH host (the local process is `ssh`)."""

    host: str

    async def sweep(self, grace_sec: float) -> list[int]:
        """End every process of the session on the host (SIGTERM, grace, SIGKILL); pids signalled."""
        ...

    async def unreachable(self) -> str | None:
        """After `ssh` exited 255: "host X unreachable: …" when the host fails a check, else None."""
        ...


# called with each batch of events as written to the session file (`ts` set), the outcome last
EventsCallback = Callable[["StageSession", Sequence[ev.AgentEvent], bytes], None]
"""(session, events, their session-file lines): the bytes just written, one line per event, so a
consumer that needs the events as JSON (the HTTP API's event stream) does not encode them again."""


class StageSession:
    """Runs one agent process to its end. Create, then `await run()`; `stop()` from anywhere."""

    def __init__(
        self,
        facts: SessionFacts,
        command: list[str],
        cwd: Path,
        prompt: str,
        mapper: Mapper,
        limits: SessionLimits,
        on_events: EventsCallback | None = None,
        env: dict[str, str] | None = None,
        executable_label: str | None = None,
        on_start: Callable[[StageSession], None] | None = None,
        remote: RemoteEnd | None = None,
        cgroup: StageCgroup | None = None,
        readers: Readers | None = None,
    ) -> None:
        self.snap = facts
        self.readers = readers  # reader processes a flood may be handed to (`offload`)
        self.cgroup = cgroup  # the agent starts in it; whatever is left in it at the end is killed
        self.command = command
        self.cwd = cwd
        self.prompt = prompt
        self.limits = limits
        self.on_events = on_events
        self.env = env
        self.executable_label = executable_label or (command[0] if command else "agent")
        self.on_start = on_start
        self.remote = remote
        self._host_failure: str | None = None  # the SSH host dropped: this is the reason
        self.proc: asyncio.subprocess.Process | None = None
        self._stop_cause: StopCause | None = None
        self._stop_reason: str | None = None
        self._stopped = asyncio.Event()
        self._signals = ProviderSignals()  # what the agent's events say about the outcome
        self._work = LineWork(mapper, facts, self._signals)  # each line's decode, map, fold, encode
        self._stderr_tail = bytearray()
        self._last_output = 0.0
        self._file: Journal | None = None
        self._stdout: PipeReader | None = None
        self._stderr: PipeReader | None = None
        self._between_lines = True  # the stdout reader holds no part of a line (`_take_whole_lines`)
        self._clock: Callable[[], float] = time.monotonic  # the loop's (set with the pipes)
        self._write_error: OSError | None = None  # the first failed write; nothing is written after it
        self._long_line = 0  # bytes of the long line being handled (what a failure names)
        self.outcome_unwritten = False  # even the final record could not be written

    # -- public ------------------------------------------------------------------------
    @property
    def mapper(self) -> Mapper:
        """The runtime's mapper of this session's lines (kept by its `LineWork`)."""
        return self._work.mapper

    @mapper.setter
    def mapper(self, mapper: Mapper) -> None:
        self._work.mapper = mapper

    def stop(self, cause: StopCause, reason: str) -> None:
        """Ask the session to end; the first cause wins. Safe to call repeatedly."""
        if self._stop_cause is None and not self.snap.finished:
            self._stop_cause, self._stop_reason = cause, reason
            self._stopped.set()

    async def run(self) -> SessionFacts:
        path = Path(self.snap.session_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        # each batch of records is one write (`_store`): the journal's buffer is not used
        self._file = handle = Journal(path)  # raises OSError: the caller's storage failure
        self.snap.started_at = now_iso()
        try:
            await self._run()
        finally:
            try:
                handle.close()
            except OSError:
                self.outcome_unwritten = True
        return self.snap

    # -- internals ---------------------------------------------------------------------
    async def _spawn(self) -> asyncio.subprocess.Process:
        """Start the agent in its own session (and cgroup), its stdout and stderr our pipes."""
        # stdout and stderr are pipes of our own, read from the loop's selector (`PipeReader`:
        # a line at a slow pace is one callback, not asyncio's three layers of transport)
        (out_fd, out_child), (err_fd, err_child) = pipe(), pipe()
        try:
            # the agent joins its cgroup by a shell's exec, not a `preexec_fn`: CPython vforks then
            command = self.command if self.cgroup is None else self.cgroup.command(self.command, self.env, self.cwd)
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=str(self.cwd),
                env=self.env,
                start_new_session=True,
                stdin=asyncio.subprocess.PIPE,
                stdout=out_child,
                stderr=err_child,
                limit=STREAM_LIMIT,
            )
        except BaseException:
            os.close(out_fd)
            os.close(err_fd)
            raise
        finally:
            os.close(out_child)
            os.close(err_child)
        self._stdout, self._stderr = PipeReader(out_fd), PipeReader(err_fd)
        self._stdout.direct = self._take_whole_lines
        self._clock = asyncio.get_running_loop().time
        return proc

    async def _run(self) -> None:
        if self._stop_cause is not None:  # stopped before it could start
            self._finish(*self._stopped_outcome(), exit_code=None, sig=None)
            return
        try:
            self.proc = await self._spawn()
        except FileNotFoundError:
            self._finish(SessionState.FAILED, f"`{self.executable_label}` not found on PATH", exit_code=None, sig=None)
            return
        except PermissionError as exc:
            self._finish(
                SessionState.FAILED, f"`{self.executable_label}` cannot be executed: {exc.strerror}", None, None
            )
            return
        except OSError as exc:
            self._finish(SessionState.FAILED, f"`{self.executable_label}` could not start: {exc}", None, None)
            return
        self.snap.pid = self.proc.pid
        self.snap.state = SessionState.RUNNING
        if self.on_start is not None:
            self.on_start(self)
        loop = asyncio.get_running_loop()
        self._last_output = loop.time()
        tasks: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._write_prompt()),
            asyncio.ensure_future(self._read_stderr()),
        ]
        reader: asyncio.Future[Any] = asyncio.ensure_future(self._read_stdout())
        watchdog: asyncio.Future[Any] = asyncio.ensure_future(self._watchdog())
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stopped.wait())
        exited: asyncio.Future[Any] = asyncio.ensure_future(self.proc.wait())
        try:
            await asyncio.wait({reader, stop_wait, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done() and not stop_wait.done():
                # the leader exited: let the pipe drain, unless a stray child keeps it open
                await asyncio.wait({reader, stop_wait}, timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done() and not stop_wait.done():
                # stdout closed: wait for the leader to exit (the watchdog still applies)
                await asyncio.wait({exited, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop_cause is not None:
                await self._sweep_remote(self.limits.cancel_grace_sec)
                await kill_group(self.proc, self.limits.cancel_grace_sec)
            else:
                await kill_group(self.proc, 0.5)  # the leader is gone: end any stray children
                if self.remote is not None and self.proc.returncode == SSH_FAILED:
                    # the connection may be gone: ask before sweeping (a sweep would wait for it too)
                    self._host_failure = await self.remote.unreachable()
                if self._host_failure is None:
                    await self._sweep_remote(0.5)
            await self._kill_escaped()
            # a process that left the group (setsid) may still hold the pipes: bounded wait
            await asyncio.wait({reader, *tasks}, timeout=PIPE_DRAIN_SEC)
            for task in (reader, *tasks):
                if not task.done():
                    task.cancel()
            await asyncio.gather(reader, *tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # the supervisor itself is being torn down: never leave the group behind
            self.stop(StopCause.SHUTDOWN, "supervisor shutting down")
            await self._sweep_remote(self.limits.cancel_grace_sec)
            await kill_group(self.proc, self.limits.cancel_grace_sec)
            await self._kill_escaped()
            self._decide_and_finish()
            raise
        finally:
            for task in (watchdog, stop_wait, exited, *tasks):
                task.cancel()
            for pipe_end in (self._stdout, self._stderr):
                if pipe_end is not None:
                    pipe_end.close()
        self._decide_and_finish()

    async def _sweep_remote(self, grace_sec: float) -> None:
        """The agent runs on an SSH host: end its processes there (killing the local `ssh` alone
        would leave them running), and say in the session file what had to be killed."""
        if self.remote is None:
            return
        killed = await self.remote.sweep(grace_sec)
        if killed and self._stop_cause is None:
            pids = describe_killed(killed)
            self._note(f"killed {len(killed)} process(es) the agent left running on {self.remote.host}: pid {pids}")

    async def _kill_escaped(self) -> None:
        """Descendants that left the agent's group (`setsid`) carry its mark: kill them too, and
        say so in the session file."""
        mark = (self.env or {}).get(MARK_VAR)
        # every process of the agent is in its cgroup (`env -i` ones too): an empty cgroup means
        # nothing escaped, without reading the marks of the supervisor's whole tree
        left = self.cgroup is None or bool(self.cgroup.pids())
        killed = await kill_marked([mark], self.limits.cancel_grace_sec, ours=True) if mark and left else []
        if self.cgroup is not None:  # `env -i` lost the mark; nothing leaves the cgroup
            killed += [pid for pid in await self.cgroup.kill() if pid not in killed]
        if killed:
            pids = describe_killed(killed)
            self._note(f"killed {len(killed)} process(es) the agent left running outside its group: pid {pids}")

    def _note(self, message: str) -> None:
        """A notice of the engine's own (a cut line, killed leftovers): vik's `unknown` form."""
        event = ev.notice(message)
        event.ts = now_iso()
        self._work.apply(event)
        self.snap.events += 1
        self._publish([event], [json_line(event.to_dict())])

    def _store(self, data: bytes, final: bool = False) -> None:
        """Into the session file now, in one write; a failed write ends the session
        (`StopCause.STORAGE`). Only the final record is tried again after a failure (the disk
        may have room again by then)."""
        assert self._file is not None
        if self._write_error is not None and not final:
            return
        try:
            self._file.append(data)
        except OSError as exc:
            self._file.discard()
            self.outcome_unwritten = final
            self._storage_failed(exc)

    def _storage_failed(self, exc: OSError) -> None:
        if self._write_error is None:
            self._write_error = exc
            self.stop(StopCause.STORAGE, f"cannot write the session file: {describe_os_error(exc)}")

    async def _write_prompt(self) -> None:
        assert self.proc and self.proc.stdin
        try:
            self.proc.stdin.write(self.prompt.encode("utf-8"))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                self.proc.stdin.close()

    async def _read_stderr(self) -> None:
        assert self._stderr is not None
        try:
            while chunk := await self._stderr.read(65536):
                self._stderr_tail += chunk
                if len(self._stderr_tail) > STDERR_TAIL_BYTES:
                    del self._stderr_tail[: len(self._stderr_tail) - STDERR_TAIL_BYTES]
        except Exception as exc:
            self._reading_failed(exc, "stderr")

    async def _read_stdout(self) -> None:
        """Read chunks and split lines ourselves: no line length can crash the reader.

        A line that spans chunks is kept as a list of parts and joined once when it ends, so
        even a line of hundreds of MiB costs linear time (no `pending + chunk` copies).
        """
        assert self._stdout is not None
        stdout = self._stdout
        loop = asyncio.get_running_loop()
        parts: list[bytes] = []
        pending = 0  # bytes in `parts`
        cut: _CutLine | None = None  # a line over MAX_LINE_BYTES, skipped to its end
        events: list[ev.AgentEvent] = []  # taken, not yet published (none at an `await`)
        encoded: list[bytes] = []  # their session-file lines
        flood = FloodWatch(self.readers) if self.readers is not None else None  # (`offload`)
        try:
            while chunk := await stdout.read(READ_CHUNK):
                self._last_output = now = loop.time()
                next_yield = now + FAIR_SLICE_SEC  # a slice per read: a line at a slow pace never yields
                lines = chunk.split(b"\n")
                tail = lines.pop()
                ts = now_iso()  # one time stamp per read: the lines arrived together
                if cut is not None and lines:  # the cut line ends here
                    cut.size += len(lines.pop(0))
                    self._note(cut.describe())
                    cut = None
                elif parts and lines:  # a line that spanned reads ends here: alone, so a huge one is not copied again
                    parts.append(lines.pop(0))
                    pending = 0
                    events += self._handle_long_line(parts, ts, encoded)
                if cut is not None:
                    cut.size += len(tail)
                elif tail:
                    parts.append(tail)
                    pending += len(tail)
                    if pending > MAX_LINE_BYTES:
                        cut, pending = _CutLine(pending, bytes(parts[0][:200])), 0
                        parts.clear()
                for start in range(0, len(lines), FAIR_LINES):
                    events += self._handle_lines(lines[start : start + FAIR_LINES], ts, encoded)
                    if loop.time() >= next_yield:
                        # one batch per slice, not per read: a read's events (~250) kept alive
                        # until its end outgrew the CPU cache and the young generation (measured:
                        # more CPU and +8 MiB at 16 flooding agents)
                        done, events = events, []  # (a failure inside the publish does not publish it twice)
                        self._publish(done, encoded)
                        encoded = []
                        await asyncio.sleep(0)  # fairness: let other sessions and the UI run
                        next_yield = loop.time() + FAIR_SLICE_SEC
                done, events = events, []
                self._publish(done, encoded)
                encoded = []
                self._between_lines = cut is None and not parts
                if flood is None or not flood.read(len(chunk) == READ_CHUNK) or cut is not None:
                    continue
                lane = await flood.readers.lane(self.mapper, self._signals, folded(self.snap), self._batch_done)
                if lane is None:
                    continue
                flood.handed()
                ended, pending = await self._read_through(lane, parts, pending)
                if ended:
                    break
        except asyncio.CancelledError:  # stopped while a line was still arriving: say what was lost
            if cut is not None or parts:
                size = cut.size if cut is not None else pending
                self._note(f"the output ended in the middle of a line of {size} bytes (not recorded)")
            raise
        except Exception as exc:  # MemoryError above all: the session ends, saying so; the supervisor goes on
            size = self._long_line or pending
            parts.clear()  # give the memory back before anything else is tried
            self._publish(events, encoded)  # the read's lines taken before it failed
            self._reading_failed(exc, "output", size)
            return
        finally:
            if flood is not None:
                flood.ended()
        try:
            if cut is not None:
                self._note(cut.describe())
            elif parts:
                last: list[bytes] = []
                self._publish(self._handle_long_line(parts, now_iso(), last), last)
        except Exception as exc:
            parts.clear()
            self._reading_failed(exc, "output", self._long_line)

    async def _read_through(self, lane: Lane, parts: list[bytes], pending: int) -> tuple[bool, int]:
        """While the session has a reader's lane: read the pipe, send its whole lines there
        (`parts` keeps the unfinished one), and take the lane back when the flood ends, before
        a long line, or when the reader is gone. (ended, bytes in `parts`)."""
        assert self._stdout is not None
        stdout, loop = self._stdout, asyncio.get_running_loop()
        stdout.direct = None  # every read in order, through the lane
        stdout.on_demand(True)  # a full pipe per read (the lane is often the slower side)
        ended = False
        calm = 0  # small reads in a row
        returning = False  # `Readers.give_back` said so: counted out until the lane is closed
        try:
            while not lane.lost and lane.failed is None:
                await lane.room()
                if lane.lost or lane.failed is not None:
                    break
                chunk = await stdout.read(READ_CHUNK)
                if not chunk:
                    ended = True
                    break
                self._last_output = loop.time()
                calm = calm + 1 if len(chunk) < SMALL_READ else 0
                end = chunk.rfind(b"\n") + 1
                if not end:  # no line ends in it
                    parts.append(chunk)
                    pending += len(chunk)
                    if pending > HANDED_LINE_MAX:
                        break  # a long line: read by the session itself (its limits, its notes)
                    continue
                if parts:
                    parts.append(chunk[:end])
                    whole = b"".join(parts)
                    parts.clear()
                else:
                    whole = chunk if end == len(chunk) else chunk[:end]
                pending = len(chunk) - end
                if pending:
                    parts.append(chunk[end:])
                lane.send(now_iso(), whole)
                if calm >= CALM_READS:
                    break
                if self.readers is not None and self.readers.give_back():
                    returning = True
                    break
            await lane.drained()
        finally:  # also when cancelled: what the reader did not answer is done here, now
            try:
                self._take_back(lane)
            finally:
                if returning and self.readers is not None:
                    self.readers.given_back()
        self._between_lines = not parts
        return ended, pending

    def _batch_done(self, head: tuple[Any, ...], records: bytes) -> None:
        """A reader's answer to one batch (`reader_worker.handle_batch`): its records written
        and published as the session's own, the facts they folded taken over."""
        _, _, count, counted, values, signals, _, ts = head
        fold_into(self.snap, values)
        ours = self._signals
        ours.completed_ok, ours.completion = signals.completed_ok, signals.completion
        ours.retry_notice, ours.provider_failure = signals.retry_notice, signals.provider_failure
        if count:
            self.snap.events += count
            self._publish(RecordLines(records, count, counted, ts), [records])

    def _take_back(self, lane: Lane) -> None:
        """The session maps its lines itself again: from the mapper's state as of the reader's
        last answer, starting with the batches it sent and had no answer for."""
        lane.close()
        self.mapper = lane.mapper
        if lane.failed is not None:  # as `_reading_failed` says it for the supervisor's own reading
            self.stop(StopCause.READ, f"vik-tui's reader process failed mapping the agent's output: {lane.failed}")
        batches = list(lane.unanswered)
        lane.unanswered.clear()
        for ts, data in batches:
            lines = data.split(b"\n")
            lines.pop()
            for start in range(0, len(lines), FAIR_LINES):
                encoded: list[bytes] = []
                self._publish(self._handle_lines(lines[start : start + FAIR_LINES], ts, encoded), encoded)
        assert self._stdout is not None
        self._stdout.on_demand(False)
        self._stdout.direct = self._take_whole_lines

    def _take_whole_lines(self, data: bytes) -> bool:
        """The stdout pipe's direct path (`PipeReader.direct`): a few whole lines that came
        while `_read_stdout` waited between lines are handled here, in the selector's callback,
        as that loop would handle them (a line at a slow pace then costs no turn of its task).
        False leaves anything else to the loop: a part of a line, more than FAIR_LINES lines."""
        if not self._between_lines or not data.endswith(b"\n") or data.count(b"\n") > FAIR_LINES:
            return False
        assert self._stdout is not None
        self._last_output = self._clock()
        lines = data.split(b"\n")
        lines.pop()  # the b"" after the last newline
        encoded: list[bytes] = []
        try:
            self._publish(self._handle_lines(lines, now_iso(), encoded), encoded)
        except Exception as exc:  # as in `_read_stdout`: the session ends, saying so
            self._stdout.direct = None
            self._reading_failed(exc, "output")
        return True

    def _handle_long_line(self, parts: list[bytes], ts: str, encoded: list[bytes]) -> list[ev.AgentEvent]:
        """A line that spanned reads (`parts`, emptied): `_handle_lines`, with the stdlib encoder
        for a long one (LONG_LINE_BYTES), and its size kept for a failure to name."""
        self._long_line = size = sum(map(len, parts))
        events = self._handle_lines(_take_line(parts), ts, encoded, stdlib_dumps if size > LONG_LINE_BYTES else None)
        self._long_line = 0
        return events

    def _reading_failed(self, exc: Exception, stream: str, size: int = 0) -> None:
        """Reading the agent's output raised (no memory for a huge line, a bug): the session
        ends with a reason that names it, never as the agent's own failure to complete."""
        line = f" (line of {size / 2**20:.3g} MiB)" if size >= 2**20 else f" (line of {size} bytes)" if size else ""
        if isinstance(exc, MemoryError):
            reason = f"vik-tui ran out of memory reading the agent's {stream}{line}"
        else:
            reason = f"vik-tui failed reading the agent's {stream}{line}: {type(exc).__name__}: {exc}"
        self.stop(StopCause.READ, reason)

    def _handle_lines(
        self, lines: list[bytes], ts: str, encoded: list[bytes], dumps: Callable[..., bytes] | None = None
    ) -> list[ev.AgentEvent]:
        """`LineWork.handle`: the batch's records added to `encoded` (written by `_publish`)."""
        return self._work.handle(lines, ts, encoded, dumps)

    def _publish(self, events: Sequence[ev.AgentEvent], encoded: list[bytes], final: bool = False) -> None:
        """Write the batch's records (`encoded`: one line per event, in order) to the file now,
        in one write, then hand its events on with those bytes. `final`: the outcome (`_store`)."""
        if not events:
            return
        data = encoded[0] if len(encoded) == 1 else b"".join(encoded)
        self._store(data, final)
        if self.on_events is not None:
            self.on_events(self, events, data)

    async def _watchdog(self) -> None:
        """The stage timeout, and the stall timeout: stdout silent that long. The stall clock is
        paused while a tool call is in flight (a long test run prints nothing through the agent);
        the stage timeout still bounds it. A pause of the supervisor itself is charged to neither."""
        loop = asyncio.get_running_loop()
        stage_deadline = loop.time() + self.limits.stage_timeout_sec
        while True:
            now = loop.time()
            stall_deadline = self._last_output + self.limits.stall_timeout_sec
            if self.snap.tools_in_flight:  # paused; look again at most one stall period later
                stall_deadline = max(stall_deadline, now + self.limits.stall_timeout_sec) + 1e9
            if now >= stage_deadline:
                self.stop(
                    StopCause.TIMEOUT,
                    f"stage timed out after {self.limits.stage_timeout_sec:g}s (loop.stage_timeout_sec)",
                )
                return
            if now >= stall_deadline:
                self.stop(
                    StopCause.STALL,
                    f"stalled: no output for {self.limits.stall_timeout_sec:g}s (loop.stall_timeout_sec)",
                )
                return
            wake = min(stage_deadline, stall_deadline, now + self.limits.stall_timeout_sec)
            await asyncio.sleep(wake - now + 0.01)
            late = loop.time() - wake
            if late > PAUSE_GAP_SEC:
                # the loop itself did not run (the supervisor was stopped: SIGSTOP, a suspended
                # laptop or container, a debugger): that time is not the agent's. Its output
                # waited in the pipe; the stall clock starts again now, after it has been read
                self._last_output = max(self._last_output, loop.time())
                stage_deadline += late

    def _stopped_outcome(self) -> tuple[SessionState, str]:
        cause, reason = self._stop_cause, self._stop_reason or ""
        if cause is not None and cause.counts_as_cancelled:
            return SessionState.CANCELLED, reason
        if cause in (StopCause.STORAGE, StopCause.BUDGET, StopCause.READ):
            return SessionState.FAILED, reason
        if self._signals.completed_ok and self._signals.provider_failure is None:
            return SessionState.COMPLETED, f"completed; then {reason}"
        if cause in (StopCause.TIMEOUT, StopCause.STALL) and self._signals.retry_notice:
            # the agent was only retrying the API: say so, it is the likely cause
            return SessionState.FAILED, f"{reason}; last retry notice: {self._signals.retry_notice}"
        return SessionState.FAILED, reason

    def _decide_and_finish(self) -> None:
        if self.snap.finished:
            return
        proc = self.proc
        code = proc.returncode if proc else None
        exit_code = code if code is not None and code >= 0 else None
        sig = -code if code is not None and code < 0 else None
        stderr = self._stderr_tail.decode("utf-8", "replace").strip()
        if self._stop_cause is not None:
            state, reason = self._stopped_outcome()
        elif self._host_failure is not None:
            state, reason = SessionState.FAILED, self._host_failure
        elif self._signals.provider_failure is not None:
            state, reason = SessionState.FAILED, self._signals.provider_failure
        elif sig is not None:
            state, reason = SessionState.FAILED, f"killed by signal {_signal_name(sig)}"
        elif exit_code not in (0, None):
            state, reason = SessionState.FAILED, f"exited with code {exit_code}"
        elif not self._signals.completed_ok:
            state, reason = SessionState.FAILED, f"exited with code {exit_code} before completing"
        else:
            state, reason = SessionState.COMPLETED, "completed"
        if (
            state == SessionState.FAILED
            and stderr
            and self._signals.provider_failure is None
            and self._host_failure is None
        ):
            reason = f"{reason}; stderr: {stderr}"
        self._finish(state, reason, exit_code, sig)

    def _finish(self, state: SessionState, reason: str, exit_code: int | None, sig: int | None) -> None:
        snap = self.snap
        snap.state, snap.reason, snap.exit_code, snap.signal = state, reason, exit_code, sig
        snap.stop_cause = self._stop_cause
        snap.ended_at = now_iso()
        snap.tools_in_flight.clear()
        completion = self._signals.completion
        outcome = ev.Outcome(
            state=state.value,
            reason=reason,
            exit_code=exit_code,
            signal=sig,
            tokens=dict(snap.tokens),
            started_at=snap.started_at,
            ended_at=snap.ended_at,
            result=completion.result if completion is not None and state == "completed" else None,
            ts=snap.ended_at,
        )
        # a completed session ends with its one `completed` record (the provider's, carrying
        # the outcome); any other with the provider's completion, if any, then an `error` one
        final: list[ev.AgentEvent] = [completion] if completion is not None and state != "completed" else []
        final.append(outcome)
        self._publish(final, [json_line(event.to_dict()) for event in final], final=True)


@dataclass
class _CutLine:
    """A stdout line over MAX_LINE_BYTES: how long it got, and how it began."""

    size: int
    head: bytes

    def describe(self) -> str:
        preview = self.head.decode("utf-8", "replace")
        return (
            f"output line cut: {self.size} bytes is over the {MAX_LINE_BYTES // 2**20} MiB limit"
            f" (not recorded; reading goes on); it began: {preview}"
        )


def _take_line(parts: list[bytes]) -> list[bytes]:
    """The parts joined into one line; `parts` is emptied first, so a huge line is held once."""
    line = b"".join(parts)
    parts.clear()
    return [line]


def _signal_name(sig: int) -> str:
    try:
        return signal_mod.Signals(sig).name
    except ValueError:
        return str(sig)
