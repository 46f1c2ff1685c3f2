"""Issue #17 item 8, the smaller ones that are plain functions: a retry whose backoff is over
but that waits for a slot says so (not `DUE IN 0s`); the command palette finds the queue screen
by "throughput" and "rate limits" (it searches titles only)."""

from __future__ import annotations

from vik_tui.engine.view import EngineView, RetryView
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.keys import KEYS
from vik_tui.ui.screens.queue import queue_markup
from vik_tui.ui.text import retry_due, wrap_lines
from vik_tui.ui.widgets.status_line import render_status


def test_a_retry_past_its_backoff_waits_for_a_slot() -> None:
    assert retry_due(0.0) == "waits for a slot"
    assert retry_due(2.2) == "3s"
    snap = EngineView(workflow="w", name="w", retries=(RetryView("A-1", "plan", 1, None, 0.0, "exit 1"),))
    text = queue_markup(snap, None)
    assert "waits for a slot" in text and " 0s " not in text
    header = render_status(snap, UNICODE)
    assert "1 retry, next waits for a slot" in header and "next in 0s" not in header


def test_the_palette_title_of_the_queue_names_what_it_shows() -> None:
    (queue,) = [key for key in KEYS if key.action == "queue"]
    title = (queue.palette_title or queue.label).lower()
    assert "throughput" in title and "rate limits" in title and "queue" in title


def test_the_reader_wraps_long_lines_instead_of_cutting_them() -> None:
    long = "    " + "x" * 150 + "END"
    wrapped = wrap_lines(["short", long], 60)
    assert wrapped[0] == "short"
    assert all(len(line) <= 60 for line in wrapped)
    assert "".join(line.strip() for line in wrapped[1:]) == long.strip()  # nothing lost
    assert all(line.startswith("    ") for line in wrapped[1:])  # continued under its indentation


def test_a_final_error_is_said_once_in_the_pane_body() -> None:
    from scripted_engine import NOW

    from vik_tui.agents import events as ev
    from vik_tui.ui.clock import FrozenClock
    from vik_tui.ui.glyphs import UNICODE
    from vik_tui.ui.records import format_records

    reason = "model refused: context window exceeded"
    error = ev.Error(detail=reason, fatal=True)
    outcome = ev.Outcome(state="failed", reason=reason, exit_code=1)
    shown: set[str] = set()
    lines = format_records([error], FrozenClock(NOW), UNICODE, errors_shown=shown)  # live: two batches
    lines += format_records([outcome], FrozenClock(NOW), UNICODE, errors_shown=shown)
    assert sum(reason in line for line in lines) == 1, lines
    assert "failed · exit 1" in lines[-1]
    other = format_records([ev.Outcome(state="failed", reason="stalled", exit_code=None)], FrozenClock(NOW), UNICODE)
    assert "stalled" in other[-1]  # a reason no error line said stays on the outcome line
