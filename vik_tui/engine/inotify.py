"""Saves of a few files, seen with Linux's inotify from the event loop (hot reload's watching).

The kernel queues an event on a descriptor for each change in a watched directory; the loop
reads them when the descriptor is readable (`loop.add_reader`), so watching costs no thread and
no wake-up while nothing changes. This replaced watchfiles' Rust watcher in a daemon thread: its
import (anyio, multiprocessing, pickle and the extension) and its two threads were 1.4 MiB of a
supervisor's resident memory, for a handful of files.

What counts as a change is what watchfiles reported with the `notify` crate's inotify watcher:
a file created, written (each write, and its close), its attributes changed (`touch`), deleted,
or moved in or out (an editor's save by rename). A burst of them is one change (`saved`): the
first event, then until `step` passes with no new one, or `debounce` in all, as watchfiles'
`watch(debounce=, step=)` grouped them, so a file is read once its writer is done with it. A
queue that overflowed (`IN_Q_OVERFLOW`: events were lost) counts as a change of every file.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Collection, Iterable, Iterator
from typing import Any

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
CHANGES = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name, NUL-padded)
READ_BYTES = 16 * 1024  # many events per read (one is 16 bytes and a name of at most 256)


class Inotify:
    """One inotify descriptor watching `dirs` (not recursively). Raises OSError when inotify is
    not there (not Linux) or refuses (a directory gone, the user's watch limit)."""

    def __init__(self, dirs: Iterable[str], mask: int = CHANGES) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            raise OSError(errno.ENOSYS, "inotify is not available on this system") from None
        fd = int(init(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            raise _error("inotify_init1")
        self.fd = fd
        self.dirs: dict[int, str] = {}  # watch descriptor -> its directory
        try:
            for directory in dirs:
                wd = int(add(fd, os.fsencode(directory), mask))
                if wd < 0:
                    raise _error(directory)
                self.dirs[wd] = directory
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def changed(self) -> Iterator[str | None]:
        """The paths named by the events queued now (None: the queue overflowed, so any of them);
        nothing if there are none."""
        try:
            data = os.read(self.fd, READ_BYTES)
        except BlockingIOError:
            return
        offset = 0
        while offset + EVENT.size <= len(data):
            wd, mask, _cookie, size = EVENT.unpack_from(data, offset)
            offset += EVENT.size
            name = data[offset : offset + size].rstrip(b"\0")
            offset += size
            if mask & IN_Q_OVERFLOW:
                yield None
                continue
            directory = self.dirs.get(wd)
            if directory is not None:
                yield os.path.join(directory, os.fsdecode(name)) if name else directory


async def saved(
    notify: Inotify, targets: Collection[str], until: asyncio.Future[Any], debounce: float = 0.2, step: float = 0.05
) -> bool:
    """True after the first burst of changes to one of `targets` (absolute paths) is over: `step`
    seconds without another, or `debounce` seconds after its first. False once `until` is done."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    seen = 0  # changes to the targets so far

    def readable() -> None:
        nonlocal seen
        for path in notify.changed():
            if path is None or path in targets:
                seen += 1
        if seen and not first.done():
            first.set_result(None)

    loop.add_reader(notify.fd, readable)
    try:  # the reader goes before the descriptor is closed, even when the caller is cancelled
        await asyncio.wait((first, until), return_when=asyncio.FIRST_COMPLETED)
        start = loop.time()
        while first.done() and not until.done():
            before = seen
            await asyncio.sleep(step)
            if seen == before or loop.time() - start >= debounce:
                return not until.done()
        return False
    finally:
        loop.remove_reader(notify.fd)
        if not first.done():
            first.cancel()


def _error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")
