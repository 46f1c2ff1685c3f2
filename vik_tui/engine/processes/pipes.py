"""An agent's output pipe read straight from the loop's selector, without asyncio's transport.

asyncio's subprocess pipes hand each read through three layers before the reader sees it: the
transport's `_read_ready`, a `call_soon` of the subprocess protocol's `pipe_data_received` (one
more turn of the loop), and the `StreamReader`'s buffer and waiter. At a slow pace (a hundred
agents each printing a line now and then) every line is such a read, and those layers cost
about as much as the line's own work (decode, map, encode, write). `PipeReader` is the read end
of a pipe the supervisor made itself (the child's end is passed as its stdout or stderr): one
selector callback reads what the pipe holds into a buffer and wakes the one task that waits in
`read()`; the buffer is bounded (reading stops while it is full: the agent's writes block, as
they would on a full pipe), and end of file, or a read error, is the empty read that ends the
reader's loop.

`direct` goes one step further for what comes while the reader waits: data read while a task
waits in `read()` with nothing buffered is offered to `direct(data)` first, in the selector's
callback; when it returns True it has taken the data (the waiting task is not woken and never
sees it), so a lone line costs no turn of the task at all. Order holds: nothing is buffered
and the task is idle, so everything before that data was handled already.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from vik_tui.engine.wakeups import PATIENT

READ_SIZE = 64 * 1024  # what one pipe holds by default: one read takes it all
# Reading pauses once READ_SIZE is buffered (`limit`): a flooding agent's next 64 KiB wait in the
# pipe itself, and a reader that asks for READ_SIZE gets one read's bytes as they came, never two
# joined and cut again (at twice that, a flood held three copies per agent: 0.3 MiB at 4 agents).


def pipe() -> tuple[int, int]:
    """(read end, write end), both close-on-exec (the child gets the write end as a standard
    stream, which is not); the read end does not block."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(read_end, False)
    return read_end, write_end


class PipeReader:
    """The read end `fd` of a pipe (owned from now on: `close()` closes it), read in the running
    loop. One task at a time may wait in `read()`."""

    def __init__(self, fd: int, limit: int = READ_SIZE) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._limit = limit  # reading pauses while this much is buffered
        self._chunks: list[bytes] = []
        self._size = 0  # bytes in `_chunks`
        self._eof = False
        self._error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading = True
        self._closed = False
        self.direct: Callable[[bytes], bool] | None = None  # see the module's docstring
        # read only when asked (`read()`), not as data comes: a reader that is often behind
        # (a flood handed to a reader process) then takes the full pipe in one read, not a
        # few KiB per wakeup as the agent writes them
        self._on_demand = False
        PATIENT.add(fd)  # an agent's output: a headless loop may batch its wake-ups (`wakeups`)
        self._loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO and the like: end the stream, saying why
            self._error = exc
            data = b""
        waiter = self._waiter
        if data:
            direct = self.direct
            if direct is not None and waiter is not None and not waiter.done() and not self._chunks and direct(data):
                return  # taken while the reader waited: nothing to wake it for
            self._chunks.append(data)
            self._size += len(data)
            if self._size >= self._limit or self._on_demand:
                self._pause()
        else:
            self._eof = True
            self._pause()
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    async def read(self, n: int = READ_SIZE) -> bytes:
        """What the pipe gave so far, up to `n` bytes (at least one); b"" at end of file.
        Raises the OSError that ended the reading, once what came before it was read."""
        while not self._chunks:
            if self._eof or self._closed:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                return b""
            if self._on_demand:
                self._readable()  # what the pipe holds now, if anything
                if self._chunks or self._eof:
                    continue
                self._resume()  # nothing yet: wait for it
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        if len(chunks) == 1 and len(chunks[0]) <= n:
            data = chunks.pop()
        else:
            data = b"".join(chunks)
            chunks.clear()
            if len(data) > n:
                chunks.append(data[n:])
                data = data[:n]
        self._size -= len(data)
        if self._size < self._limit and not self._on_demand:
            self._resume()
        return data

    def on_demand(self, on: bool) -> None:
        """Read the pipe only inside `read()` (on) or as data comes (off, the default)."""
        self._on_demand = on
        if not on and self._size < self._limit:
            self._resume()

    def _resume(self) -> None:
        if not self._reading and not self._eof and not self._closed:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        """Stop reading and close the pipe; what was not read yet is dropped, and `read()`
        returns b"" from now on (the session that owns it is over)."""
        if self._closed:
            return
        self._closed = True
        self._pause()
        PATIENT.discard(self._fd)  # (before the number can be reused)
        os.close(self._fd)
        self._chunks.clear()
        self._size = 0
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
