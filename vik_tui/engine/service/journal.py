"""Append-only JSON Lines files that a full disk cannot corrupt.

Session files, daily logs and the crash-recovery sweep all append whole lines. A write can fail
half-way (ENOSPC, EIO, EROFS, a file-size limit): then the file is cut back to the last whole
line it had, so a reader never meets half a record, and the error is raised for the caller to
report. A file whose last byte is not a newline (left so by a crash, or by a filesystem that
refused the cut) gets one before the next record, so the next record is whole too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

import orjson

DEFAULT_BUFFER = 128 * 1024


def describe_os_error(exc: OSError) -> str:
    """`No space left on device (ENOSPC)`: the words and the code a person can search for."""
    code = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({code})" if code else text


def json_line(record: Any) -> bytes:
    """One JSON record as a whole UTF-8 line, whatever text it holds.

    Tracker and agent text is untrusted: a lone surrogate (`"\\ud800"` is valid JSON) cannot be
    encoded as UTF-8, and raised out of every writer (the daily log took the supervisor down).
    It is written as its JSON escape instead, so the record reads back as it came; NUL and control
    codes are escaped by JSON itself; integers beyond 64 bits go through the stdlib.
    """
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        text = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        return text.encode("utf-8", "backslashreplace")


class Journal:
    """One open append-only file with a write buffer; `write` and `flush` raise OSError.

    Writing goes through `os.write` on an O_APPEND descriptor: no hidden buffer keeps a part of a
    record that could be written later, after the failure was handled.
    """

    def __init__(self, path: str | Path, buffer_size: int = DEFAULT_BUFFER) -> None:
        self.path = Path(path)
        self.buffer_size = buffer_size
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._size = os.fstat(self._fd).st_size
            self._needs_newline = self._size > 0 and os.pread(self._fd, 1, self._size - 1) != b"\n"
        except OSError:
            os.close(self._fd)
            raise
        self._buffer = bytearray()
        self.closed = False

    @property
    def size(self) -> int:
        """Bytes in the file that are whole lines (what a failed write is cut back to)."""
        return self._size

    def write(self, data: bytes) -> int:
        """Buffer whole lines; they reach the file at `flush()` or when the buffer is full."""
        if len(data) >= self.buffer_size and not self._buffer:
            self._commit(data)  # a huge record: no copy into the buffer
        else:
            self._buffer += data
            if len(self._buffer) >= self.buffer_size:
                self.flush()
        return len(data)

    def append(self, data: bytes) -> None:
        """Whole lines into the file now, after any buffered ones: one write, no copy of `data`
        when nothing is buffered (a session's batch of records)."""
        if self._buffer:
            self._buffer += data
            self.flush()
        else:
            self._commit(data)

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer = self._buffer, bytearray()  # on failure these records are lost, never half-written
            self._commit(data)

    def discard(self) -> None:
        """Forget buffered records (after a failure, before closing)."""
        self._buffer.clear()

    def close(self) -> None:
        """Flush and close; the descriptor is closed even when the flush fails (which raises)."""
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            os.close(self._fd)

    def _commit(self, data: bytes | bytearray) -> None:
        prefix = b"\n" if self._needs_newline else b""
        try:
            if prefix:
                _write_all(self._fd, prefix)
            written = os.write(self._fd, data)  # all of it, on a regular file with room
            if written < len(data):
                _write_all(self._fd, memoryview(data)[written:])
        except OSError:
            self._cut_back()
            raise
        self._size += len(prefix) + len(data)
        self._needs_newline = not data.endswith(b"\n")

    def _cut_back(self) -> None:
        """Remove what a failed write left (truncating needs no free space); if even that fails,
        the next record starts on a line of its own."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self._needs_newline = True
        else:
            self._needs_newline = self._size > 0 and self._last_byte() != b"\n"

    def _last_byte(self) -> bytes:
        try:
            return os.pread(self._fd, 1, self._size - 1)
        except OSError:
            return b""


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises rather than return 0 on files
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]


def append_lines(path: str | Path, data: bytes, fsync: bool = False) -> None:
    """Open, append whole lines (a newline first if the file ends mid-line), close. Raises OSError."""
    journal = Journal(path, buffer_size=max(len(data), 1))
    try:
        journal.write(data)
        journal.flush()
        if fsync:
            with contextlib.suppress(OSError):
                os.fsync(journal._fd)
    finally:
        with contextlib.suppress(OSError):
            journal.close()
