"""A reader process: the per-line work (`lines.LineWork`) of sessions the supervisor hands over
while they flood, on another core.

It reads frames from its standard input (one end of a socket pair; the other end is the
supervisor's) and answers each batch of lines with one frame on the same socket: the batch's
records as the session file gets them, and the facts they folded. It never opens a file, a
pipe or a process: the supervisor keeps reading each agent's pipe, writing every record and
deciding everything (`offload`). It ends when the supervisor's end closes. Only the mappers,
the event classes and orjson are imported (no pydantic, no asyncio): a small process.

Frames, both ways: `frames.py`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from typing import Any

from vik_tui.agents import events as ev
from vik_tui.engine.stages.frames import CLOSE, CRASHED, DONE, FAILED, HEADER, LINES, OPEN, encode_head
from vik_tui.engine.stages.lines import COUNTED, FoldedFacts, LineWork, ProviderSignals, fold_into, folded

SLICE_LINES = 32  # lines encoded per join (`LineWork.handle`'s note on the heap)


def handle_batch(work: LineWork, ts: str, data: bytes) -> tuple[tuple[Any, ...], bytes]:
    """One batch of whole lines: its DONE head and its records."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline
    encoded: list[bytes] = []
    counted: list[ev.AgentEvent] = []
    before = work.snap.events
    for start in range(0, len(lines), SLICE_LINES):
        events = work.handle(lines[start : start + SLICE_LINES], ts, encoded)
        counted += [event for event in events if type(event) in COUNTED]
    count = work.snap.events - before
    return (DONE, count, counted, folded(work.snap), work.signals, work.mapper, ts), b"".join(encoded)


def send_frame(fd: int, head: tuple[Any, ...], payload: bytes = b"") -> None:
    """`frame(head, payload)` written to `fd` (blocking) without copying the payload into it."""
    parts = [encode_head(head, len(payload)), payload]
    while parts:
        written = os.writev(fd, parts)
        while parts and written >= len(parts[0]):
            written -= len(parts[0])
            parts.pop(0)
        if parts and written:
            parts[0] = parts[0][written:]


def serve(fd: int) -> None:
    """Answer frames on `fd` (a socket, blocking) until the supervisor's end closes."""
    source = open(fd, "rb", buffering=64 * 1024, closefd=False)  # noqa: SIM115 (the caller's fd)
    lanes: dict[int, LineWork] = {}
    while True:
        header = source.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        meta_size, payload_size = HEADER.unpack(header)
        head = pickle.loads(source.read(meta_size))
        payload = source.read(payload_size) if payload_size else b""
        kind, lane = head[0], head[1]
        if kind == LINES:
            work = lanes[lane]
            try:
                reply, records = handle_batch(work, head[2], payload)
            except Exception as exc:  # MemoryError above all: the session ends, saying so
                reply, records = (FAILED, f"{type(exc).__name__}: {exc}"), b""
            send_frame(fd, (reply[0], lane, *reply[1:]), records)
        elif kind == OPEN:
            _, _, mapper, values, signals = head
            snap = FoldedFacts()
            fold_into(snap, values)
            lanes[lane] = LineWork(mapper, snap, signals if isinstance(signals, ProviderSignals) else ProviderSignals())
        elif kind == CLOSE:
            lanes.pop(lane, None)


def main() -> None:
    """Serve on standard input; a bug of ours is told to the supervisor (it logs it and maps the
    sessions itself), never printed: standard error may be the supervisor's screen."""
    # it runs in a session of its own (a terminal's Ctrl-C does not reach it); a SIGINT sent to it
    # anyway does not end it either: it ends when the supervisor closes its end, not before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(0)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the supervisor is gone: nothing of ours is left to save
    except BaseException as exc:
        with contextlib.suppress(OSError):
            send_frame(0, (CRASHED, 0, f"{type(exc).__name__}: {exc}"))
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
