"""The API's event ring is bounded by the agent records it holds, not only by its entry count:
batches of flooding agents (hundreds of records each) must not pin hundreds of MiB."""

from __future__ import annotations

from vik_tui.agents.events import Message
from vik_tui.api.stream import RECORDS_KEPT, EventHub
from vik_tui.engine import engine_events as ee


def batch(records: int) -> ee.AgentEvents:
    messages = tuple(Message(text="x" * 200, ts="2026-01-01T00:00:00.000Z") for _ in range(records))
    return ee.AgentEvents(issue="A", stage="plan", attempt=1, session_file="f", records=messages)


def test_the_ring_keeps_a_bounded_number_of_agent_records() -> None:
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
