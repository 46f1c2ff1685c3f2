"""Server-Sent Events, read from an aiohttp response body.

Written here rather than taken from a package: the aiohttp SSE clients on PyPI are unkept
(last releases 2021-2023) and reconnect by themselves, while the attached UI must decide
itself when and from which `Last-Event-ID` to reconnect (no event lost or shown twice).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import StreamReader

MAX_LINE = 64 * 1024 * 1024  # one event's data line (a batch of agent records) may be large


@dataclass(frozen=True, slots=True)
class SseEvent:
    id: int | None
    event: str
    data: str


async def read_events(body: StreamReader) -> AsyncIterator[SseEvent]:
    """Events until the stream ends. Comments (`: ping`) and unknown fields are skipped, as the
    SSE spec says; an `id:` that is not an integer counts as none. Chunks are split into lines
    here (aiohttp's `readline` refuses lines over its buffer, and one batch of agent records
    may be longer); a line over MAX_LINE ends the stream with ValueError."""
    event_id: int | None = None
    name = "message"
    data: list[str] = []
    pending = b""
    async for chunk in body.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > MAX_LINE:
            raise ValueError(f"an event stream line is over {MAX_LINE} bytes")
        for raw in lines:
            line = raw.decode("utf-8", "replace").removesuffix("\r")
            if not line:
                if data:
                    yield SseEvent(event_id, name, "\n".join(data))
                event_id, name, data = None, "message", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                event_id = int(value) if value.isdigit() else None
