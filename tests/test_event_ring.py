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


def test_with_no_client_only_the_newest_lines_are_kept_for_a_replay() -> None:
    """A flood with nobody attached: slim batches beyond LINES_KEPT of lines give them up (their
    entries stay, for `recent` and the counts); a replay from before them hears of the loss and
    one from after them gets every frame."""
    hub = EventHub()
    big = batch(stream.SLIM_RECORDS * 4, text="y" * 300, with_lines=True)
    count = 4 * stream.LINES_KEPT // len(big.lines)
    for _ in range(count):
        hub(big)
    assert len(hub.ring) == count and hub.bytes_kept == count * len(big.lines) <= BYTES_KEPT  # the ring as before
    solid = [e for e in hub.ring if not e.hollow]
    assert hub.lines_kept == len(solid) * len(big.lines) <= stream.LINES_KEPT < hub.lines_kept + len(big.lines)
    assert solid == list(hub.ring)[-len(solid) :] and hub.oldest == solid[0].id == hub.hollowed + 1
    entries, lost = hub.since(0)
    assert lost and entries == solid
    entries, lost = hub.since(solid[0].id - 1)
    assert not lost and entries == solid and all(e.frame.startswith(b"id: %d\n" % e.id) for e in entries)
    assert hub.since(solid[0].id - 2)[1]  # one hollowed entry short: lost
    recent = list(hub.recent("A", 20))
    assert len(recent) == 20 and recent[0].hollow  # the issue's recent events are all there
    assert {e.describe() for e in recent} == {big.describe()}
    with pytest.raises(RuntimeError, match="hollowed out"):
        _ = recent[0].frame


async def test_while_a_client_is_attached_no_lines_are_given_up() -> None:
    """A client's queue may still hold an old entry to send: nothing is hollowed out meanwhile,
    and once it has gone the next batch brings the lines back to LINES_KEPT."""
    hub = EventHub()
    client = stream.Client(drop=lambda: None, size=10_000)
    hub.clients.add(client)
    big = batch(stream.SLIM_RECORDS * 4, text="y" * 300, with_lines=True)
    for _ in range(3 * stream.LINES_KEPT // len(big.lines)):
        hub(big)
    assert not any(e.hollow for e in hub.ring) and hub.lines_kept > stream.LINES_KEPT
    data, ended = client.take()
    assert not ended and data.count(b"event: agent_events\n") == len(hub.ring)
    hub.clients.discard(client)
    hub(big)
    assert hub.lines_kept <= stream.LINES_KEPT and hub.ring[0].hollow and not hub.ring[-1].hollow
