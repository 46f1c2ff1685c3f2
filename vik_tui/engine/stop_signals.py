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
from collections.abc import Callable

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
    """Call `stop(reason)` on each of `signals` (SIGHUP first detaches the terminal); returns a
    function that removes the handlers. Where the loop cannot take signal handlers (not the
    main thread), nothing is installed."""
    installed: list[int] = []

    def handler(sig: int) -> None:
        if sig == signal.SIGHUP:
            detach_terminal()
        stop(REASONS.get(sig, SHUTDOWN_REASON))

    for sig in signals:
        try:
            loop.add_signal_handler(sig, handler, sig)
        except (ValueError, RuntimeError, NotImplementedError):
            continue
        installed.append(sig)

    def remove() -> None:
        for sig in installed:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)

    return remove
