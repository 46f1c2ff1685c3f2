"""Signals that stop the supervisor cleanly: SIGINT, SIGTERM and SIGHUP.

SIGHUP is what a closed terminal sends (a killed tmux pane, a dropped ssh session). Left to its
default it ends the process at once: agents, in their own sessions, would run on orphaned and
their session files would end without an outcome. Here it is a clean stop like SIGTERM, every
running stage ending `cancelled` with the reason `terminal closed`.

A closed terminal also makes every later write to it fail (EIO), and a UI that keeps drawing
while the engine stops would block on it; `detach_terminal()` points the standard streams at
/dev/null first, so the stop can run to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Awaitable, Callable
from typing import Any

SHUTDOWN_REASON = "supervisor shutting down"
TERMINAL_CLOSED = "terminal closed"
REASONS: dict[int, str] = {
    signal.SIGINT: SHUTDOWN_REASON,
    signal.SIGTERM: SHUTDOWN_REASON,
    signal.SIGHUP: TERMINAL_CLOSED,
}


def detach_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null where they are a terminal (a character
    device: a hung-up terminal may no longer answer `isatty`); files and pipes stay."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
    finally:
        os.close(null)


def install_stop_signals(
    loop: asyncio.AbstractEventLoop,
    stop: Callable[[str], None],
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
) -> Callable[[], None]:
    """Call `stop(reason)` on the loop for each of `signals`; returns a function that removes the
    handlers. Where signals cannot be handled (not the main thread), nothing is installed.

    SIGHUP gets a plain Python handler rather than a loop one: it runs at once in the main
    thread, before the handlers of signals with higher numbers (a hang-up also sends SIGCONT,
    on which a UI library may start drawing again), so the terminal is detached first.
    """
    restore: dict[int, Any] = {}  # SIGHUP: the handler it had
    on_loop_signals: list[int] = []

    def on_loop(sig: int) -> None:
        stop(REASONS.get(sig, SHUTDOWN_REASON))

    def hangup(_sig: int, _frame: object) -> None:
        detach_terminal()
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to stop
            loop.call_soon_threadsafe(stop, TERMINAL_CLOSED)

    for sig in signals:
        try:
            if sig == signal.SIGHUP:
                restore[sig] = signal.signal(sig, hangup)
            else:
                loop.add_signal_handler(sig, on_loop, sig)
                on_loop_signals.append(sig)
        except (ValueError, RuntimeError, NotImplementedError):
            continue

    def remove() -> None:
        for sig in on_loop_signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        for sig, previous in restore.items():
            with contextlib.suppress(ValueError, RuntimeError, TypeError):
                signal.signal(sig, previous)

    return remove


async def unless_stopped(stop: asyncio.Event, work: Awaitable[None]) -> bool:
    """Run `work` until it ends or `stop` is set; then it is cancelled (a pull command that
    hangs is killed with its group, as `proc.run_shell` does on cancel). True if it ran to its end.

    SIGTERM sets `stop`: without this, a stop waited for the pull command to finish (up to
    `pull_timeout_sec`) and `vik-tui stop` gave up after 30 s."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()  # its own exception, if any
    return True
