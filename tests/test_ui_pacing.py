"""FramePace: when the app repaints and how much, given the time of each tick (no clock read,
no sleeps: every case is a sequence of ticks at stated times)."""

from __future__ import annotations

from itertools import pairwise

from vik_tui.ui.pacing import BUSY_STREAMS, FRAME, FULL_EVERY, FULL_EVERY_BUSY, PANE_EVERY_BUSY, FramePace


def settled_pace() -> FramePace:
    """Its first (forced, full) frame painted at t=0."""
    pace = FramePace()
    assert pace.next_frame(0.0, events=False) is True
    return pace


def test_a_burst_of_records_is_one_repaint() -> None:
    pace = settled_pace()
    for _ in range(50):
        pace.streamed("a.jsonl")
    assert pace.next_frame(FRAME, events=False) is False  # the pane's text only: no new snapshot
    assert pace.next_frame(2 * FRAME, events=False) is None  # nothing since


def test_an_engine_event_repaints_everything_at_the_next_tick() -> None:
    pace = settled_pace()
    pace.changed()
    assert pace.next_frame(FRAME, events=True) is True


def test_without_anything_new_the_screen_is_still_refreshed_for_timers() -> None:
    pace = settled_pace()
    ticks = [FRAME * i for i in range(1, 11)]
    painted = [t for t in ticks if pace.next_frame(t, events=False) is not None]
    assert painted and all(b - a >= FULL_EVERY - 1e-9 for a, b in pairwise([0.0, *painted]))


def test_while_many_agents_stream_the_pane_and_table_slow_down() -> None:
    pace = settled_pace()
    frames: list[tuple[float, bool]] = []
    for i in range(1, 41):  # 2 s of ticks, every session talking at every tick
        for n in range(BUSY_STREAMS + 1):
            pace.streamed(f"{n}.jsonl")
        now = round(FRAME * i, 3)
        full = pace.next_frame(now, events=False)
        if full is not None:
            frames.append((now, full))
    times = [t for t, _ in frames]
    assert all(b - a >= PANE_EVERY_BUSY - 1e-9 for a, b in pairwise(times))
    fulls = [t for t, full in frames if full]
    assert fulls and all(b - a >= FULL_EVERY_BUSY - 1e-9 for a, b in pairwise(fulls))


def test_a_forced_refresh_is_full_even_while_busy() -> None:
    pace = settled_pace()

    def everyone_talks() -> None:
        for n in range(BUSY_STREAMS + 1):
            pace.streamed(f"{n}.jsonl")

    everyone_talks()
    assert pace.next_frame(FRAME, events=False) is None  # under 100 ms since the last write
    assert pace.next_frame(PANE_EVERY_BUSY, events=False) is False
    everyone_talks()
    pace.force_full()  # a command, the filter, a resize: not held back
    assert pace.next_frame(PANE_EVERY_BUSY + FRAME, events=False) is True


def test_agents_that_print_in_bursts_keep_the_busy_pace_between_bursts() -> None:
    """100 agents printing every 0.6 s together: the ticks between their bursts see no stream,
    and were taken for a quiet screen (a full repaint every 0.25 s)."""
    pace = settled_pace()
    fulls = []
    for i in range(1, 61):  # 3 s of ticks
        now = round(FRAME * i, 3)
        if i % 12 == 1:  # a burst every 0.6 s
            for n in range(100):
                pace.streamed(f"{n}.jsonl")
        if pace.next_frame(now, events=False):
            fulls.append(now)
    assert fulls and all(b - a >= FULL_EVERY_BUSY - 1e-9 for a, b in pairwise(fulls)), fulls
