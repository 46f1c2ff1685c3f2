"""The event stream: every engine event numbered, kept in a bounded ring for `Last-Event-ID`
replay, and fanned out to each Server-Sent Events client through its own bounded queue.

The supervisor's listener (`EventHub.__call__`) only appends to a deque and offers the entry to
each client's queue, never awaits and never serialises: with no client attached an event costs
a deque append. An entry's SSE frame is encoded once, by the first client that sends it, and
shared as bytes by every client and every replay; an `agent_events` batch reuses the lines the
session writer already encoded for the session file (`AgentEvents.lines`) instead of encoding
its records again. A client's writer takes everything queued at each wakeup and writes it in
one call. A client whose queue is full (it stopped reading, so its socket buffer and then its
queue filled up) is disconnected at once: the supervisor's memory stays bounded and its loop is
never blocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from vik_tui.engine import engine_events as ee

RING_SIZE = 4096  # events kept for Last-Event-ID replay
CLIENT_QUEUE = 1024  # events waiting to be written to one client before it is disconnected
FLUSH_SEC = 0.005  # a busy stream is written at most this often per client (a quiet one at once)
LAST_EVENTS_PER_RUN = 2000  # (issue, stage) pairs whose last agent event is remembered
# agent records the ring holds at most: a batch may carry hundreds of them, so 4096 batches of
# flooding agents would hold hundreds of MiB; the oldest entries go first (a replay says so)
RECORDS_KEPT = 20_000
# and bytes: the encoded size of what it holds (an agent batch's session-file lines). The decoded
# records of a batch take about five times its lines (measured on Codex streams), so 1 MiB of
# lines holds ~4,000 records and ~5 MiB of memory (20,000 records pinned ~26 MiB under a flood);
# at a realistic pace (one record per batch) RING_SIZE is the bound that counts.
BYTES_KEPT = 1 << 20
# of which the lines of big agent batches (`Entry` keeps them to splice their frames) that a
# Last-Event-ID replay may still send: with no client attached, the older ones are dropped
# (`Entry.hollow`) and their entries stay for `recent` and the counts. Under a flood this is a
# few thousandths of a second either way; the memory is 0.8 MiB of a supervisor's peak.
LINES_KEPT = 1 << 18
# an agent batch of at least this many records is kept as its lines alone (`Entry`); a smaller
# one (a realistic pace's batch holds one) is kept whole: copying its event would cost more
SLIM_RECORDS = 16
EVENT_BYTES = 200  # what any other event (or a record without its line) is counted as


def encode(data: Any) -> bytes:
    """One line of JSON: orjson, or the stdlib for what orjson refuses (huge ints, NaN)."""
    try:
        return orjson.dumps(data, default=str)
    except TypeError:
        return json.dumps(data, default=str, separators=(",", ":")).encode()


def event_data(event: ee.EngineEvent) -> bytes:
    """An event's wire object (`to_json()`) as one line of JSON. An `agent_events` batch whose
    session-file lines are known is spliced from them: its `records` (the last key) are those
    lines joined with commas, the bytes `encode(event.to_json())` would make, without building a
    dict per record and encoding it a second time."""
    if isinstance(event, ee.AgentEvents) and event.lines and event.lines.count(b"\n") == len(event.records):
        return _spliced(event, event.lines)
    return encode(event.to_json())


def _spliced(event: ee.AgentEvents, lines: bytes) -> bytes:
    head = encode(event.to_json(without=("records",)))
    return b'%s,"records":[%s]}' % (head[:-1], lines[:-1].replace(b"\n", b","))


class Entry:
    """One numbered event; its SSE frame is built when first needed, then shared.

    A big agent batch whose session-file lines are known is kept as those lines alone (its
    records dropped from `event` at once): the frame is spliced from the lines anyway, and a
    flood's records then die young, in the cache, instead of being pinned by the ring (~5x the
    bytes of their lines) and freed cold when the ring pushes them out (9 % of a 4-agent
    flood's CPU with no client attached). Its lines may later be dropped too (`hollow_out`:
    LINES_KEPT); it then stays for its description and the counts, never to be sent again."""

    __slots__ = ("_frame", "_lines", "event", "id", "records", "size", "slim")

    def __init__(self, number: int, event: ee.EngineEvent) -> None:
        self.id = number
        self.event = event
        self._frame: bytes | None = None
        self._lines: bytes | None = None  # a slim agent batch's lines (its records dropped)
        self.slim = False  # kept as its lines (or, hollowed, as nothing but its description)
        self.records = 0  # agent records it holds
        self.size = EVENT_BYTES  # bytes it is counted for (`EventHub.bytes_kept`)
        if isinstance(event, ee.AgentEvents):
            count = self.records = len(event.records)
            lines = event.lines
            self.size = len(lines) or EVENT_BYTES * count
            # `lines` is one line per record (AgentEvents): counting them cost 2.5 % of a flood
            if count >= SLIM_RECORDS and lines.endswith(b"\n"):
                self.event = dataclasses.replace(event, records=(), lines=b"")
                self._lines = lines
                self.slim = True

    @property
    def hollow(self) -> bool:
        """Its lines were dropped: it can no longer be sent."""
        return self.slim and self._lines is None

    def hollow_out(self) -> None:
        self._lines = self._frame = None

    def describe(self) -> str:
        """The event's one-line description (a slim batch counts the records it had)."""
        if self.slim and isinstance(self.event, ee.AgentEvents):
            return f"{self.event.where} {ee.plural(self.records, 'agent event')}"
        return self.event.describe()

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            if self._lines is not None and isinstance(self.event, ee.AgentEvents):
                data = _spliced(self.event, self._lines)
            elif self.slim:
                raise RuntimeError(f"event {self.id} was hollowed out: it cannot be sent")
            else:
                data = event_data(self.event)
            self._frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.event.name.encode(), data)
        return self._frame


def message(name: str, data: Any) -> bytes:
    """An SSE message that is not an engine event (`hello`, `stream_reset`): no id, so it does
    not move the client's Last-Event-ID."""
    return b"event: %s\ndata: %s\n\n" % (name.encode(), encode(data))


class Client:
    """One SSE connection's queue (entries; None: the stream ends). `drop` is called (once)
    when it overflows. A deque and one future rather than an `asyncio.Queue`: the listener's
    `offer` runs for every event and every client, and the writer takes all that is queued at
    once (`take`), so it writes once per wakeup, not once per event."""

    def __init__(self, drop: Callable[[], None], size: int | None = None) -> None:
        self.pending: deque[Entry | None] = deque()
        self.size = size or CLIENT_QUEUE
        self.overflowed = False
        self._drop = drop
        self._waiter: asyncio.Future[None] | None = None
        self._written = 0.0  # loop time of the last `take`

    def offer(self, entry: Entry | None) -> None:
        if self.overflowed:
            return
        if len(self.pending) >= self.size and entry is not None:
            self.overflowed = True
            self.pending.clear()  # nothing more goes to a dropped client
            self._drop()
        else:
            self.pending.append(entry)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Until something is queued (True) or `timeout` seconds passed (False). Within FLUSH_SEC
        of the last write it waits for the rest of that time first, so what arrives meanwhile
        goes in the same write: while agents flood, a client costs one write per FLUSH_SEC
        instead of one per batch; after a quiet spell the first event goes out at once."""
        loop = asyncio.get_running_loop()
        if not self.pending and not self.overflowed:
            waiter = self._waiter = loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                return bool(self.pending)
            finally:
                self._waiter = None
        early = self._written + FLUSH_SEC - loop.time()
        if early > 0 and not self.overflowed:
            await asyncio.sleep(early)
        return True

    def take(self) -> tuple[bytes, bool]:
        """Everything queued, as one write's bytes, and whether the stream ends after it."""
        self._written = asyncio.get_running_loop().time()
        frames: list[bytes] = []
        pending = self.pending
        while pending:
            entry = pending.popleft()
            if entry is None:
                return b"".join(frames), True
            frames.append(entry.frame)
        return b"".join(frames), False


class EventHub:
    """Subscribed to the supervisor; numbers events and hands them to the stream clients."""

    def __init__(self, ring_size: int | None = None) -> None:
        self.ring: deque[Entry] = deque(maxlen=ring_size or RING_SIZE)
        self.records_kept = 0  # agent records held by the ring's entries
        self.bytes_kept = 0  # and their size (`Entry.size`)
        self.lined: deque[Entry] = deque()  # the slim entries that still hold their lines, oldest first
        self.lines_kept = 0  # and those lines' bytes
        self.hollowed = 0  # the id of the newest entry hollowed out: a replay cannot reach back to it
        self.last_id = 0
        self.clients: set[Client] = set()
        # (issue, stage) -> (kind, message, ts) of its newest agent event: Symphony's last_event
        self.last_agent_event: dict[tuple[str, str], tuple[str, str, str | None]] = {}
        self.poll_pending = False  # a refresh was asked and no intake ran since (coalescing)

    def __call__(self, event: ee.EngineEvent) -> None:
        self.last_id += 1
        entry = Entry(self.last_id, event)
        ring = self.ring
        if len(ring) == ring.maxlen:
            self._forget(ring[0])  # the append below pushes it out
        ring.append(entry)
        self.records_kept += entry.records
        self.bytes_kept += entry.size
        while (self.records_kept > RECORDS_KEPT or self.bytes_kept > BYTES_KEPT) and len(ring) > 1:
            self._forget(ring.popleft())
        if entry.slim:
            self.lined.append(entry)
            self.lines_kept += entry.size
            if not self.clients:  # (a client's queue may still hold an older entry to send)
                self._hollow_out()
        for client in tuple(self.clients):
            client.offer(entry)
        if isinstance(event, ee.AgentEvents) and event.records:
            self._remember(event)
        elif isinstance(event, ee.Intake | ee.IntakeFailed):
            self.poll_pending = False

    def _forget(self, entry: Entry) -> None:
        self.records_kept -= entry.records
        self.bytes_kept -= entry.size
        if self.lined and self.lined[0] is entry:  # (both are in the ring's order)
            self.lined.popleft()
            self.lines_kept -= entry.size

    def _hollow_out(self) -> None:
        """The oldest slim entries give up their lines until LINES_KEPT (the newest keeps them)."""
        lined = self.lined
        while self.lines_kept > LINES_KEPT and len(lined) > 1:
            entry = lined.popleft()
            self.lines_kept -= entry.size
            entry.hollow_out()
            self.hollowed = entry.id

    @property
    def oldest(self) -> int | None:
        """The id of the oldest entry a replay can send (None: the ring is empty)."""
        if not self.ring:
            return None
        return max(self.ring[0].id, self.hollowed + 1)

    def _remember(self, event: ee.AgentEvents) -> None:
        record = event.records[-1]
        text = getattr(record, "text", None) or getattr(record, "detail", None) or ""
        key = (event.issue, event.stage)
        self.last_agent_event.pop(key, None)  # re-insert: the dict's order is recency
        self.last_agent_event[key] = (record.kind, str(text)[:500], record.ts)
        if len(self.last_agent_event) > LAST_EVENTS_PER_RUN:
            del self.last_agent_event[next(iter(self.last_agent_event))]

    def since(self, last_seen: int) -> tuple[list[Entry], bool]:
        """The kept entries after `last_seen` that can be sent, and whether some in between were
        lost (the ring moved past them or hollowed them out, or the id is from another
        supervisor's numbering)."""
        if last_seen > self.last_id:
            return [], True
        oldest = self.oldest or self.last_id + 1
        lost = last_seen + 1 < oldest
        return [entry for entry in self.ring if entry.id > last_seen and not entry.hollow], lost

    def recent(self, issue_id: str, count: int) -> Iterable[Entry]:
        """The newest `count` kept events about one issue, oldest first."""
        found: list[Entry] = []
        for entry in reversed(self.ring):
            if getattr(entry.event, "issue", None) == issue_id:
                found.append(entry)
                if len(found) >= count:
                    break
        return reversed(found)

    def close_all(self) -> None:
        """The server is stopping: every stream ends after what it has queued."""
        for client in tuple(self.clients):
            client.offer(None)
