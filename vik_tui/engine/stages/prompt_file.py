"""Reading a stage's `prompt_file`: off the event loop, with a time limit, regular files only.

The path is the user's: a FIFO (or a hung network mount) blocked `read_text()` on the event
loop, and with it every agent's output, the UI and even SIGTERM. The read runs in a thread
bounded by `READ_TIMEOUT_SEC` (a thread stuck in the kernel is abandoned, the loop goes on), and
anything but a regular file is refused before a byte is read (opening a FIFO without O_NONBLOCK
waits for a writer).
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from vik_tui.config.files import not_regular_reason

READ_TIMEOUT_SEC = 10.0


class PromptFileError(Exception):
    """The prompt file cannot be used; the message says why."""


def _read_regular(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PromptFileError(f"{path} is {not_regular_reason(mode)}")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    return data.decode("utf-8")


async def read_prompt_file(path: Path, timeout_sec: float = READ_TIMEOUT_SEC) -> str:
    """The file's text; PromptFileError (not regular, too slow), OSError or UnicodeDecodeError."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_read_regular, path), timeout_sec)
    except TimeoutError:
        raise PromptFileError(f"{path} did not answer within {timeout_sec:g}s (a hung mount?)") from None
