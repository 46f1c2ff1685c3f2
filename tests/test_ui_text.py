"""Pure UI helpers: sanitising agent text, formatting records, merging a replay with live records."""

from __future__ import annotations

import dataclasses

import pytest

from vik_tui.agents import events as ev
from vik_tui.engine.view import EngineView, IntakeStatus, IntakeView, RateLimitView, RunStatus, SessionState, Tokens
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.glyphs import ASCII, UNICODE, default_glyphs
from vik_tui.ui.records import format_records, merge_replay
from vik_tui.ui.text import countdown, human_count, mmss, one_line, sanitize
from vik_tui.ui.widgets.status_line import render_status

CLOCK = FrozenClock("2026-01-15T12:00:00Z")


def events(*records: dict) -> list[ev.AgentEvent]:
    """Session-file records as the engine hands them to the UI: typed agent events."""
    return [ev.AgentEvent.from_record(record) for record in records]


@pytest.mark.parametrize(
    "raw",
    [
        "\x1b[2J",
        "\x1b[H\x1b[2J",
        "\x1b[31mred\x1b[0m",
        "\x1b]0;title\x07",
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
        "\x1bPq#0;2;0;0;0\x1b\\",
        "\x9b2J",
        "\x1b7\x1b8",
        "\x1b(B",
        "bell\x07",
        "nul\x00",
        "\x1b[?1049h",
        "\x1b[6n",
    ],
)
def test_sanitize_removes_every_escape(raw: str) -> None:
    clean = sanitize(raw)
    assert "\x1b" not in clean and "\x9b" not in clean
    assert all(ch in "\n\t" or (ord(ch) >= 32 and not 0x7F <= ord(ch) <= 0x9F) for ch in clean)


def test_sanitize_shows_control_characters_as_escapes() -> None:
    """What was sent stays visible (as `run`'s text output shows it); only colours are dropped."""
    assert sanitize("a\x1b]52;c;cHduZWQ=\x07b") == "a\\x1b]52;c;cHduZWQ=\\x07b"
    assert sanitize("\x1b[2J\x1b[6n") == "\\x1b[2J\\x1b[6n"
    assert sanitize("nul\x00 bs\b \x9b2J") == "nul\\x00 bs\\x08 \\x9b2J"
    assert sanitize("x\x1b]2;left open\nnext line") == "x\\x1b]2;left open\nnext line"
    assert sanitize(sanitize("\x1b]2;t\x07")) == sanitize("\x1b]2;t\x07")  # shown once, not escaped again


def test_sanitize_keeps_text_and_collapses_progress() -> None:
    assert sanitize("\x1b[31mred\x1b[0m text") == "red text"
    assert sanitize("10%\r50%\r100%") == "100%"
    assert sanitize("downloading\r\ndone") == "downloading\ndone"
    assert sanitize("a\r") == "a"
    assert sanitize("tab\there") == "tab here"
    assert sanitize("plain ünïcödé ✓") == "plain ünïcödé ✓"


def test_one_line_and_numbers() -> None:
    assert one_line("first\nsecond") == "first …"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"
    assert human_count(999) == "999"
    assert human_count(12_345) == "12.3k"
    assert human_count(4_100_000) == "4.1M"
    assert mmss(72.9) == "1:12"
    assert countdown(11.2) == "12s"
    assert countdown(0) == "0s"


def test_format_records_layout() -> None:
    ts = "2026-01-15T11:58:48.000Z"
    records = events(
        {"kind": "message", "role": "assistant", "text": "hello\nworld", "ts": ts},
        {"kind": "message", "role": "reasoning", "text": "thinking", "ts": ts},
        {"kind": "tool_call", "call_id": "1", "name": "shell", "status": "started", "input": "ls -la", "ts": ts},
        {
            "kind": "tool_call",
            "call_id": "1",
            "name": "shell",
            "status": "failed",
            "exit_code": 2,
            "output": "a\nb\nc\nd\ne\n",
            "ts": ts,
        },
        {"kind": "tool_call", "call_id": "2", "name": "edit", "status": "completed", "input": "update x.py", "ts": ts},
        {"kind": "token_usage", "input_tokens": 5, "ts": ts},
        {"kind": "error", "message": "\x1b[31mboom\x1b[0m", "fatal": True, "ts": ts},
        {
            "kind": "outcome",
            "state": "failed",
            "reason": "boom",
            "exit_code": 1,
            "tokens": {"input": 1200, "output": 30},
            "ts": ts,
        },
    )
    lines = format_records(records, CLOCK, UNICODE, width=100)
    assert lines == [
        "11:58:48  hello",
        "          world",
        "11:58:48  ~ thinking",
        "11:58:48  ▸ shell  ls -la",
        "11:58:48  ✗ exit 2",
        "          │ a",
        "          │ b",
        "          │ c",
        "          │ … 2 more lines (e reads it all)",
        "11:58:48  ✓ edit  update x.py",
        "11:58:48  [error] boom",
        "11:58:48  ── failed · exit 1 · tokens in 1.2k out 30 ──",  # boom: said by the [error] line above
    ]
    ascii_lines = format_records(records[2:4] + records[-1:], CLOCK, ASCII, width=100)
    assert ascii_lines[0] == "11:58:48  $ shell  ls -la"
    assert ascii_lines[1] == "11:58:48  x exit 2"
    assert ascii_lines[-2].endswith("... 2 more lines (e reads it all)")
    assert ascii_lines[-1] == "11:58:48  -- failed · boom · exit 1 · tokens in 1.2k out 30 --"
    wrapped = format_records([ev.Error(fatal=True, detail="word " * 30, ts=ts)], CLOCK, UNICODE, 60)
    assert len(wrapped) > 1 and all("[error] " in line for line in wrapped)


def test_format_records_wraps_and_clips_to_width() -> None:
    text = "word " * 60
    lines = format_records(
        [
            ev.Message(text=text, ts="2026-01-15T11:00:00Z"),
            ev.ToolCall(name="shell", status="started", input="x" * 500),
        ],
        CLOCK,
        UNICODE,
        width=60,
    )
    assert len(lines) > 3
    assert all(len(line) <= 60 for line in lines)


def test_format_records_never_raises_on_odd_records() -> None:
    lines = format_records(
        events(
            {"kind": "message", "text": None},
            {"kind": "tool_call"},
            {"kind": "unknown", "raw": {"type": "x.y"}},
            {"kind": "brand_new"},
            {},
            {"kind": "outcome", "tokens": "not a dict", "exit_code": "?"},
            {"kind": "completed", "success": False, "result": None},
        ),
        CLOCK,
        UNICODE,
    )
    assert len(lines) == 7
    assert "unhandled event x.y" in lines[2] and "unhandled event brand_new" in lines[3]


def test_merge_replay_drops_the_overlap() -> None:
    a, b, c, d = (ev.Message(text=t, ts=f"2026-01-15T11:00:0{i}Z") for i, t in enumerate("abcd"))
    assert merge_replay([a, b], [c, d]) == [c, d]  # read before the live batches
    assert merge_replay([a, b, c], [c, d]) == [d]  # the file already had c
    assert merge_replay([a, b, c, d], [c, d]) == []  # and d
    assert merge_replay([], [a]) == [a]
    half = ev.Error(detail='unreadable record in session file: {"kind": "mes')
    assert merge_replay([a, b, half], [c]) == [c]
    said = ev.Error(detail="unreadable record in session file: said by the agent", ts="2026-01-15T11:00:09Z")
    assert merge_replay([a, said], [said, d]) == [d]  # a real error event is compared like any other


def test_status_line_text() -> None:
    snap = EngineView(
        workflow="/p/proj/workflow.yml",
        name="proj/workflow.yml",
        running=2,
        max_issue_concurrency=4,
        intake=IntakeView(status=IntakeStatus.IDLE, next_poll_in=2.2),
        tokens=Tokens(input=12_300, output=4_100),
        rate_limits={
            "primary": RateLimitView("primary", used_percent=42.0),
            "rpm": RateLimitView("rpm", remaining=7, limit=60),
        },
    )
    text = render_status(snap, UNICODE)
    assert "proj/workflow.yml" in text and "next in 3s" in text and "running 2/4" in text
    assert "tokens in 12.3k out 4.1k" in text and "primary 42%" in text and "rpm 7/60" in text
    snap = dataclasses.replace(
        snap, intake=IntakeView(status=IntakeStatus.ERROR, error="pull failed: \x1b[2Jboom", next_poll_in=1.0)
    )
    text = render_status(snap, UNICODE)
    # the escape is shown, not obeyed; its `[` escaped in the markup (`text.markup_text`)
    assert "error: pull failed: \\x1b\\[2Jboom" in text and "\x1b" not in text
    snap = dataclasses.replace(snap, intake=IntakeView(status=IntakeStatus.PAUSED, paused=True))
    assert "paused" in render_status(snap, UNICODE)


def test_ascii_glyphs_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIK_TUI_ASCII", "1")
    assert default_glyphs() is ASCII
    monkeypatch.delenv("VIK_TUI_ASCII")
    assert default_glyphs() is UNICODE
    assert UNICODE.for_status(RunStatus.RUNNING, 3) == UNICODE.spinner[3]
    assert ASCII.for_status(RunStatus.RETRY_WAIT) == "R"
    assert UNICODE.for_status(SessionState.STARTING) == UNICODE.preparing and UNICODE.for_status(None) == "·"
    assert all(
        ord(ch) < 128
        for field in ("reserved", "preparing", "completed", "failed", "cancelled", "retry", "none", "tool")
        for ch in getattr(ASCII, field)
    )


def test_session_highlighter_styles_line_kinds() -> None:
    from rich.text import Text

    from vik_tui.ui.highlight import SessionHighlighter, theme_styles

    styles = theme_styles({"error": "#ff0000", "success": "#00ff00", "primary": "#0000ff", "warning": "#ffff00"})
    highlighter = SessionHighlighter(styles, UNICODE)

    def spans(line: str) -> set[str]:
        text = Text(line)
        highlighter.highlight(text)
        return {str(span.style) for span in text.spans}

    assert any("#ff0000" in s for s in spans("11:58:48  [error] boom"))
    assert any("#00ff00" in s for s in spans("11:58:48  ✓ exit 0"))
    assert any("#ff0000" in s for s in spans("11:58:48  ✗ exit 2"))
    assert any("#0000ff" in s for s in spans("11:58:48  ▸ shell  ls"))
    assert any("italic" in s for s in spans("          ~ more reasoning"))
    assert spans("plain text without a stamp") == set()


def test_full_records_keep_every_output_line_and_edit_paths_keep_their_end() -> None:
    from vik_tui.agents import events as ev
    from vik_tui.ui.clock import FrozenClock
    from vik_tui.ui.glyphs import UNICODE
    from vik_tui.ui.records import format_records

    output = "\n".join(f"line {i}" for i in range(10))
    call = ev.ToolCall(call_id="c", name="shell", status="completed", exit_code=0, output=output, input="ls")
    full = format_records([call], FrozenClock(), UNICODE, 80, full=True)
    assert sum("│ line" in line for line in full) == 10 and not any("more line" in line for line in full)
    long_path = "update " + "/deep" * 30 + "/the_file_that_matters.py"
    edit = ev.ToolCall(call_id="e", name="edit", status="completed", input=long_path)
    (line,) = format_records([edit], FrozenClock(), UNICODE, 60)
    assert line.endswith("the_file_that_matters.py") and "update …" in line


def test_a_turn_start_that_session_files_keep_as_vik_does_draws_no_line() -> None:
    """vik keeps Codex's `turn.started` as an `unknown` record; the pane has nothing to say of it."""
    lines = format_records(
        events(
            {"kind": "unknown", "event_type": "turn.started", "raw": {"type": "turn.started"}},
            {"kind": "unknown", "event_type": "turn.paused", "raw": {"type": "turn.paused"}},
        ),
        CLOCK,
        UNICODE,
    )
    assert len(lines) == 1 and "unhandled event turn.paused" in lines[0]
