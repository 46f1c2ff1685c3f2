"""Fewer wake-ups at a slow pace: the loop takes what became readable at most once per tick.

A hundred agents printing five lines a second each woke the headless supervisor 500 times a
second, once per line, and each wake-up (the poll, the loop's turn, the pipe's read, the
session's task) cost more than the line's own work. Batched, the loop that had to wait for
input and is woken by some sleeps out the rest of a short tick (`TICK_SEC` after the previous
such wake-up, never past the loop's next timer) and then takes everything that became readable
meanwhile in the same turn. What is readable at once is taken at once, and so is a wake-up that
found a pipe holding a burst (`BURST_BYTES` or more: a flooding agent, whose pipe would fill and
stall it during the tick), and so is an end (a pipe at its EOF, a process that exited); a line
after a quiet spell goes at once too. So a line waits at most one tick, and at a slow pace the
wake-ups follow the ticks, not the lines.

Only agents' output may wait (`PATIENT`: the pipes `processes.pipes.PipeReader` reads). Every
other wake-up goes at once: a thread's result or a signal (the loop's own socket), a pull's
output, a hook's, an API client's request. Each of those is what the next step waits for, and
they come once per step, not once per line: batched, a run's start-up (pull, parse, render,
spawn) waited out a tick at each step.

It wraps the `select` of the loop's selector (asyncio's selector event loop, the default on
Linux and macOS); on a loop without one it does nothing. Headless `run` uses it; the terminal UI
does not (a key would wait for the tick).
"""

from __future__ import annotations

import asyncio
import fcntl
import selectors
import sys
import termios
import time
from collections.abc import Callable
from typing import Any

# a line waits at most this long (what an attached screen shows stays within ~50 ms of the
# agent's write); 500 lines/s then cost about 2 wake-ups per tick (the first line, the tick's
# end): at 20 ms the wake-ups, each refilling caches a hundred agents had emptied, were a sixth
# of the supervisor's CPU at 100 agents x 5 lines/s (issue #20, docs/benchmarks.md)
TICK_SEC = 0.045

BURST_BYTES = 4096  # a wake-up that finds this much in one pipe is taken at once (a flood, not a pace)
Ready = list[tuple[selectors.SelectorKey, int]]

# the descriptors whose wake-ups may wait for the tick: agents' output pipes, added and removed
# by their reader (`PipeReader`); a loop that does not batch never looks at it
PATIENT: set[int] = set()


def _burst(ready: Ready) -> bool:
    """Whether one of the readable descriptors holds BURST_BYTES or more (pipes and sockets say
    how much with FIONREAD), or is an end: a pipe readable with nothing in it is at its EOF (an
    agent or a pull command closed its output), and a descriptor FIONREAD does not know is the
    pidfd of a process that ended. An end is taken at once: it is what the next step waits for
    (the pull's issues, the stage's outcome), and it comes once per process."""
    for key, _events in ready:
        try:
            pending = int.from_bytes(fcntl.ioctl(key.fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
        except OSError:
            return True
        if pending >= BURST_BYTES or pending == 0:
            return True
    return False


class BatchedSelect:
    """A selector's `select`, with the wait for input rounded up to the tick (see above)."""

    def __init__(
        self, select: Callable[[float | None], Ready], tick_sec: float = TICK_SEC, patient: set[int] = PATIENT
    ) -> None:
        self.select = select
        self.tick_sec = tick_sec
        self.patient = patient  # only these wait for the tick (agents' output)
        self.woken = 0.0  # monotonic time of the last wake-up by input after a wait
        self.wakeups = 0  # such wake-ups so far (what the batching saves is counted in these)

    def __call__(self, timeout: float | None = None) -> Ready:
        ready = self.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready  # readable already (a flood), or the loop has work: no wait at all
        start = time.monotonic()
        ready = self.select(timeout)
        if not ready:
            return ready  # a timer is due
        now = time.monotonic()
        pause = self.woken + self.tick_sec - now
        if timeout is not None:
            pause = min(pause, start + timeout - now)  # never past the loop's next timer
        if pause > 0 and self._may_wait(ready):
            time.sleep(pause)
            ready = self.select(0)  # everything that became readable meanwhile
        self.woken = time.monotonic()
        self.wakeups += 1
        return ready

    def _may_wait(self, ready: Ready) -> bool:
        """Only agents' output, none of it a burst or an end, waits for the tick."""
        patient = self.patient
        return all(key.fd in patient for key, _events in ready) and not _burst(ready)


def batch_wakeups(loop: asyncio.AbstractEventLoop, tick_sec: float = TICK_SEC) -> Callable[[], None]:
    """Batch the wake-ups of `loop` (see the module's docstring); returns the undo."""
    found = getattr(loop, "_selector", None)
    if not isinstance(found, selectors.BaseSelector):
        return lambda: None
    selector: Any = found  # its `select` is replaced on this one object
    batched = BatchedSelect(selector.select, tick_sec)
    selector.select = batched

    def undo() -> None:
        if selector.select is batched:
            del selector.select  # the class's own method again

    return undo
