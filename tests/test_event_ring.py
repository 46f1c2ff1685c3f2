"""The API's event ring is bounded by the agent records it holds and by their bytes, not only by
its entry count: batches of flooding agents (hundreds of records each) must not pin hundreds of MiB."""

from __future__ import annotations

import orjson
import pytest

from vik_tui.agents.events import Message
from vik_tui.api import stream
from vik_tui.api.stream import BYTES_KEPT, RECORDS_KEPT, EventHub
from vik_tui.engine import engine_events as ee


def batch(records: int, text: str = "x" * 200, with_lines: bool = False) -> ee.AgentEvents:
    messages = tuple(Message(text=text, ts="2026-01-01T00:00:00.000Z") for _ in range(records))
    lines = b"".join(orjson.dumps(m.to_dict()) + b"\n" for m in messages) if with_lines else b""
    return ee.AgentEvents(issue="A", stage="plan", attempt=1, session_file="f", records=messages, lines=lines)


def test_the_ring_keeps_a_bounded_number_of_agent_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "BYTES_KEPT", 1 << 40)  # this test is about the records' count
    hub = EventHub()
    per_batch = 1000
    for _ in range(3 * RECORDS_KEPT // per_batch):
        hub(batch(per_batch))
    kept = sum(len(e.event.records) for e in hub.ring if isinstance(e.event, ee.AgentEvents))
    assert kept == hub.records_kept <= RECORDS_KEPT
    assert len(hub.ring) == RECORDS_KEPT // per_batch
    entries, lost = hub.since(0)
    assert lost and entries[-1].id == hub.last_id  # a replay from the start says what was lost


def test_other_events_still_fill_the_ring_by_count() -> None:
    hub = EventHub(ring_size=8)
    hub(batch(10))
    for _ in range(20):
        hub(ee.Log(level="info", message="tick"))
    assert len(hub.ring) == 8 and hub.records_kept == 0  # the batch left with its records


def test_the_ring_keeps_a_bounded_number_of_bytes() -> None:
    """Batches of long records (their session-file lines known, as the session writer hands them
    on) are counted by those lines: the ring keeps at most BYTES_KEPT of them, the newest."""
    hub = EventHub()
    big = batch(100, text="y" * 1000, with_lines=True)
    assert len(big.lines) > 100_000 and big.lines.count(b"\n") == 100
    for _ in range(4 * BYTES_KEPT // len(big.lines)):
        hub(big)
    kept = [e for e in hub.ring if isinstance(e.event, ee.AgentEvents)]
    assert hub.bytes_kept == sum(e.size for e in kept) == len(kept) * len(big.lines) <= BYTES_KEPT
    assert len(kept) == BYTES_KEPT // len(big.lines) and hub.records_kept == 100 * len(kept) < RECORDS_KEPT
    assert kept[-1].id == hub.last_id and hub.since(0)[1]  # the newest stays; a replay from 0 hears of the loss
    hub(batch(3))  # a batch without its lines is counted per record
    assert hub.ring[-1].size == 3 * stream.EVENT_BYTES


def test_one_batch_larger_than_the_bound_is_still_kept_alone() -> None:
    """The newest event is always kept (a client that asks for it gets it), whatever its size."""
    hub = EventHub()
    huge = batch(1, text="z" * (2 * BYTES_KEPT), with_lines=True)
    hub(ee.Log(level="info", message="before"))
    hub(huge)
    assert [e.event for e in hub.ring] == [huge] and hub.bytes_kept == len(huge.lines)


def test_a_big_batch_is_kept_as_its_lines_and_streams_the_same_bytes() -> None:
    """A flood's batch pins its lines, not its decoded records (five times their size, freed cold
    when the ring pushed them out); its frame and description are those of the whole batch."""
    hub = EventHub()
    big, small = batch(stream.SLIM_RECORDS, with_lines=True), batch(stream.SLIM_RECORDS - 1, with_lines=True)
    hub(big)
    hub(small)
    slim, whole = hub.ring
    assert isinstance(slim.event, ee.AgentEvents) and slim.event.records == ()
    assert slim.records == stream.SLIM_RECORDS and hub.records_kept == 2 * stream.SLIM_RECORDS - 1
    assert slim.frame == b"id: 1\nevent: agent_events\ndata: %s\n\n" % stream.encode(big.to_json())
    assert slim.describe() == big.describe() == f"A/plan {stream.SLIM_RECORDS} agent events"
    assert whole.event is small and whole.describe() == small.describe()  # a small batch is kept whole
    assert whole.frame.endswith(b"data: %s\n\n" % stream.encode(small.to_json()))
    unknown = batch(stream.SLIM_RECORDS)  # lines not known: kept whole, encoded from its records
    hub(unknown)
    assert hub.ring[-1].event is unknown
