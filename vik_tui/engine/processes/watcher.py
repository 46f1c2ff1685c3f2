"""Wait for our children with pidfds in the event loop, not with a thread each.

Python 3.11's asyncio watches each child it starts with a thread of its own blocked in
`waitpid` (`ThreadedChildWatcher`): a hundred agents are a hundred threads, each started with
its agent, and each thread is one more `/proc/self/task/*/children` file for the subreaper's
scans (`descendants`). 3.11's own `PidfdChildWatcher` is bound to one loop (and is attached only
by `set_event_loop` in the main thread); `PidfdWatcher` is Python 3.12's loop-agnostic one: a
pidfd per child (Linux 5.3+) read by whichever loop started the child. Python 3.12 picks that
by itself where it works (and deprecates choosing), so this is for 3.11 only.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVarTuple, Unpack

Ts = TypeVarTuple("Ts")


class PidfdWatcher(asyncio.AbstractChildWatcher):
    """One pidfd per child in the running loop's selector; its exit is read when it is readable."""

    def __init__(self) -> None:
        self.watched: set[int] = set()  # children some loop waits for (the reaper leaves them be)

    def add_child_handler(self, pid: int, callback: Callable[[int, int, Unpack[Ts]], object], *args: *Ts) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._do_wait, loop, pid, pidfd, callback, args)
        self.watched.add(pid)

    def _do_wait(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        pidfd: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        loop.remove_reader(pidfd)
        self.watched.discard(pid)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # collected elsewhere: as asyncio's own watchers say it
            returncode = 255
        else:
            returncode = os.waitstatus_to_exitcode(status)
        os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True  # the reader goes with the child's exit

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass  # each child is watched by the loop that started it

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> PidfdWatcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        pass


_installed: PidfdWatcher | None = None


def waited_for() -> frozenset[int]:
    """The children the installed `PidfdWatcher` waits for now (none installed: empty). Such a
    pid is not reaped, so it cannot be reused, while it is in the set."""
    return frozenset(_installed.watched) if _installed is not None else frozenset()


def use_pidfd_watcher() -> PidfdWatcher | None:
    """Install `PidfdWatcher` on Python 3.11 where the kernel has `pidfd_open`; the watcher in
    place (None: asyncio's own). Children started before keep the watcher they had."""
    if sys.version_info >= (3, 12) or not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):  # no such call in this kernel (or this build)
        return None
    os.close(fd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.get_child_watcher()
        if not isinstance(watcher, PidfdWatcher):
            watcher = PidfdWatcher()
            asyncio.set_child_watcher(watcher)
    global _installed
    _installed = watcher
    return watcher
