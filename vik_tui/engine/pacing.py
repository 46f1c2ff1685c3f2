"""The loop's rhythm and its ending: when intake polls, how long it sleeps, what wakes it
(`poll_now`, `resume`, `finish`, `stop`), and the wait at the end for the stages still
running. The flags the commands set (paused, draining, stopping) live here.

It exists so the Supervisor's `run()` reads as a sequence and its commands as decisions;
the waiting on events and timeouts is this room's job. It never touches a `StageRun`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from vik_tui.config.schema import Workflow
from vik_tui.engine.listing import Listing
from vik_tui.engine.service.stop_signals import SHUTDOWN_REASON, unless_stopped
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import IntakeStatus


class Pacing:
    """One per supervisor, on its loop."""

    def __init__(self, listing: Listing, workflow: Callable[[], Workflow], now: Callable[[], float]) -> None:
        self._listing, self._workflow, self._now = listing, workflow, now
        self.paused = False
        self.stopping = False
        self.draining = False  # drain(): no new dispatch, no retry; stop once nothing runs
        self.finished_polling = False
        self.stop_reason = SHUTDOWN_REASON
        self.wake = asyncio.Event()  # a session ended or the config changed (drain waits on it)
        self.poll_requested = asyncio.Event()  # poll now, resume, finish or stop
        self.stop_event = asyncio.Event()

    def poke(self) -> None:
        """Wake the poll loop and the final wait (a command changed something)."""
        self.poll_requested.set()
        self.wake.set()

    async def cycles(self, intake_cycle: Callable[[], Awaitable[None]]) -> None:
        """Poll every `issues.pull.idle_sec` (at once on `poll_now`) until `max_iterations`,
        `finish()` or `stop()`."""
        while not self.stopping and not self.finished_polling:
            if not self.paused:
                self.poll_requested.clear()  # a poll_now() during this cycle must not be lost
                await unless_stopped(self.stop_event, intake_cycle())  # a hung pull yields to stop()
                if self.stopping:
                    return
                max_iter = self._workflow().loop.max_iterations
                if max_iter is not None and self._listing.iterations >= max_iter:
                    self.finished_polling = True
                    self._listing.done()
                    return
            await self._sleep_until_next_poll()
        if self.finished_polling:
            self._listing.done()

    async def _sleep_until_next_poll(self) -> None:
        idle = float(self._workflow().issues.pull.idle_sec)
        self._listing.next_poll_at = None if self.paused else self._now() + idle
        if not self.paused:
            self._listing.status = IntakeStatus.IDLE if self._listing.error is None else IntakeStatus.ERROR
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.poll_requested.wait(), None if self.paused else idle)

    async def settle(self, runs: Iterable[StageRun]) -> None:
        """After the last cycle: wait until every session ended and no retry is pending, and
        every attempt's task has finished its clean-up (a run is `completed` before its task
        has swept the host and dispatched what was waiting for its slot). `runs` is a live view."""
        while not self.stopping and any(
            r.status.cancellable or (r.task is not None and not r.task.done()) for r in runs
        ):
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._workflow().loop.wait_ms / 1000)
