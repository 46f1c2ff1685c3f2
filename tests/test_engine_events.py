"""Engine events: the wire form (docs/command-line.md, "Headless events") and the one human sentence of each."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from vik_tui.agents import events as ev
from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.engine import engine_events as ee
from vik_tui.engine.headless import Printer, format_event
from vik_tui.engine.view import RunStatus
from vik_tui.ui.clock import FrozenClock
from vik_tui.ui.event_lines import EventLines

TS = "2026-01-15T12:00:01.250Z"

# The wire object of every event, key order included: `event`, `ts`, `level`, then the fields
# exactly as `vik-tui run --headless --json` printed them before events were typed.
WIRE: dict[str, list[str]] = {
    "supervisor_started": ["workflow", "root", "pid"],
    "supervisor_stopped": ["iterations"],
    "log": ["message"],
    "config_reloaded": ["warnings"],
    "config_rejected": ["errors"],
    "intake_polling": [],
    "intake": ["issues", "rejected", "iteration"],
    "intake_failed": ["error", "exit_code", "stderr", "iteration", "failures", "attention"],
    "intake_paused": [],
    "intake_resumed": [],
    "issue_rejected": ["id", "index", "reason"],
    "stage_reserved": ["issue", "stage", "attempt"],
    "hook_finished": [
        "issue",
        "stage",
        "hook",
        "ok",
        "exit_code",
        "timed_out",
        "error",
        "stdout_tail",
        "stderr_tail",
    ],
    "stage_started": ["issue", "stage", "attempt", "pid", "session_file", "host"],
    "stage_finished": ["issue", "stage", "attempt", "state", "reason", "exit_code", "signal", "tokens", "session_file"],
    "retry_scheduled": ["issue", "stage", "attempt", "delay_sec", "due_at"],
    "retry_given_up": ["issue", "stage", "attempts", "reason"],
    "retry_dropped": ["issue", "stage", "reason"],
    "reconcile_pending": ["issue", "stage", "reason", "grace_sec"],
    "issue_moved": ["issue", "stage", "state", "reason"],
    "agent_events": ["issue", "stage", "attempt", "session_file", "records"],
    "host_unhealthy": ["host", "error"],
    "host_healthy": ["host", "recovered"],
    "issue_rehosted": ["issue", "from_host", "to_host", "reason"],
    "drain_started": ["running"],
    "drain_cancelled": [],
    "drain_finished": ["retries_kept"],
    "budget_spent": ["used", "limit", "resumes_at"],
    "rate_limited": ["runtime", "until", "reason"],
}
DIAG = Diagnostic(Severity.ERROR, "loop", "yaml_syntax", "bad YAML", line=3, column=7)
STAGE = {"issue": "A-1", "stage": "plan"}


def samples() -> list[ee.EngineEvent]:
    """One event of every kind, as the supervisor makes them."""
    return [
        ee.SupervisorStarted(ts=TS, workflow="/w/workflow.yml", root="/w/.vik", pid=42),
        ee.SupervisorStopped(ts=TS, iterations=3),
        ee.Log(ts=TS, level="warning", message="config watcher stopped: boom"),
        ee.ConfigReloaded(ts=TS, warnings=2),
        ee.ConfigRejected(ts=TS, errors=(DIAG,)),
        ee.IntakePolling(ts=TS),
        ee.Intake(ts=TS, issues=4, rejected=1, iteration=7),
        ee.IntakeFailed(ts=TS, error="pull command exited with code 1", exit_code=1, stderr="down", iteration=2),
        ee.IntakePaused(ts=TS),
        ee.IntakeResumed(ts=TS),
        ee.IssueRejected(ts=TS, id="../x", index=0, reason="unsafe issue id '../x'"),
        ee.StageReserved(ts=TS, **STAGE, attempt=1),
        ee.HookFinished(
            ts=TS,
            level="error",
            **STAGE,
            hook="before_run",
            ok=False,
            exit_code=3,
            timed_out=False,
            error=None,
            stdout_tail="",
            stderr_tail="nope",
        ),
        ee.StageStarted(ts=TS, **STAGE, attempt=1, pid=4242, session_file="/s/plan-1.jsonl"),
        ee.StageFinished(
            ts=TS,
            level="error",
            **STAGE,
            attempt=1,
            state=RunStatus.FAILED,
            reason="simulated failure",
            exit_code=1,
            signal=None,
            tokens={"input": 10, "output": 2, "cache_read": 0},
            session_file="/s/plan-1.jsonl",
        ),
        ee.RetryScheduled(ts=TS, **STAGE, attempt=2, delay_sec=2.0, due_at="2026-01-15T12:00:03Z"),
        ee.RetryGivenUp(ts=TS, **STAGE, attempts=3, reason="simulated failure"),
        ee.RetryDropped(ts=TS, **STAGE, reason="issue moved to done"),
        ee.ReconcilePending(ts=TS, **STAGE, reason="issue moved to review", grace_sec=30.0),
        ee.IssueMoved(ts=TS, **STAGE, state="review", reason="issue moved to review"),
        ee.AgentEvents(
            ts=TS,
            **STAGE,
            attempt=1,
            session_file="/s/plan-1.jsonl",
            records=[ev.Message(text="hi", ts=TS), ev.TokenUsage(input=5, ts=TS)],
        ),
        ee.HostUnhealthy(ts=TS, host="build-2", error="ssh: connect to host build-2 port 22: Connection refused"),
        ee.HostHealthy(ts=TS, host="build-2", recovered=True),
        ee.IssueRehosted(ts=TS, issue="A-1", from_host="build-2", to_host="build-1", reason="build-2 unreachable"),
        ee.DrainStarted(ts=TS, running=2),
        ee.DrainCancelled(ts=TS),
        ee.DrainFinished(ts=TS, retries_kept=1),
        ee.BudgetSpent(ts=TS, used=1200, limit=1000, resumes_at="2026-01-16T00:00:00Z"),
        ee.RateLimited(
            ts=TS, runtime="claude_code", until="2026-01-15T17:00:00Z", reason="claude.five_hour limit reached"
        ),
    ]


def readme_wire() -> dict[str, list[str]]:
    """The table under "Headless events" in docs/command-line.md: `a` / `b` | fields of a / fields of b."""
    text = (Path(__file__).parents[1] / "docs" / "command-line.md").read_text()
    table = text.split("## Headless events", 1)[1].split("\n\n")[2]
    documented: dict[str, list[str]] = {}
    for row in table.splitlines()[2:]:
        names_cell, fields_cell = (cell.strip() for cell in row.strip("|").split("|"))
        names = re.findall(r"`(\w+)`", names_cell)
        fields_cell = re.sub(r"\s*\([^)]*\)", "", fields_cell)
        groups = fields_cell.split(" / ") if len(names) > 1 and fields_cell else [fields_cell] * len(names)
        assert len(groups) == len(names), row
        for name, group in zip(names, groups, strict=True):
            documented[name] = [f.strip() for f in group.split(",") if f.strip()]
    return documented


def test_readme_documents_every_printed_event_as_it_is() -> None:
    printed = {cls.name for cls in ee.EVENT_TYPES if not cls.quiet}
    assert readme_wire() == {name: WIRE[name] for name in printed}


def test_every_event_kind_has_a_sample_and_a_documented_shape() -> None:
    assert sorted(type(e).__name__ for e in samples()) == sorted(cls.__name__ for cls in ee.EVENT_TYPES)
    assert sorted(cls.name for cls in ee.EVENT_TYPES) == sorted(WIRE)


@pytest.mark.parametrize("event", samples(), ids=lambda e: e.name)
def test_to_json_is_the_wire_shape_key_order_included(event: ee.EngineEvent) -> None:
    wire = event.to_json()
    assert list(wire) == ["event", "ts", "level", *WIRE[event.name]]
    assert wire["event"] == event.name and wire["ts"] == TS
    assert json.loads(json.dumps(wire)) == wire  # plain JSON values only: nothing needs `default=str`


def test_typed_payloads_become_the_dicts_the_wire_always_had() -> None:
    by_name = {e.name: e.to_json() for e in samples()}
    assert by_name["config_rejected"]["errors"] == [DIAG.to_dict()]
    assert by_name["stage_finished"]["state"] == "failed" and type(by_name["stage_finished"]["state"]) is str
    assert by_name["stage_finished"]["tokens"] == {"input": 10, "output": 2, "cache_read": 0}
    assert by_name["agent_events"]["records"] == [
        {"kind": "message", "text": "hi", "role": "assistant", "ts": TS},
        {
            "kind": "token_usage",
            "input": 5,
            "output": 0,
            "cache_read": 0,
            "cache_write": 0,
            "reasoning": 0,
            "ts": TS,
        },
    ]
    assert by_name["intake_failed"]["level"] == "error" and by_name["issue_rejected"]["level"] == "warning"


@pytest.mark.parametrize("event", samples(), ids=lambda e: e.name)
def test_every_event_describes_itself(event: ee.EngineEvent) -> None:
    text = event.describe()
    assert text.strip() and "{" not in text  # a sentence, not a dump of the fields
    if isinstance(event, ee.StageEvent):
        assert text.startswith("A-1/plan ")


def test_headless_text_and_log_pane_use_the_same_words() -> None:
    finished, scheduled = samples()[14], samples()[15]
    assert format_event(finished) == ("12:00:01 ERROR A-1/plan FAILED: simulated failure (exit 1, tokens in 10 out 2)")
    assert format_event(scheduled) == "12:00:01 A-1/plan retry #2 in 2s"
    lines = EventLines(FrozenClock())
    assert lines.line(finished) == ("error", "12:00:01 A-1/plan FAILED: simulated failure (exit 1, tokens in 10 out 2)")
    assert lines.line(scheduled) == ("info", "12:00:01 A-1/plan retry #2 in 2s")


def test_a_moved_issue_is_news_not_a_stop() -> None:
    moved = ee.IssueMoved(ts=TS, **STAGE, state="review", reason="issue moved to review")
    assert format_event(moved) == "12:00:01 A-1/plan issue moved to review; the stage keeps running"
    assert EventLines(FrozenClock()).line(moved) == (
        "info",
        "12:00:01 A-1/plan issue moved to review; the stage keeps running",
    )


def test_log_pane_skips_quiet_events_and_unchanged_intake() -> None:
    lines = EventLines(FrozenClock())
    quiet = [e for e in samples() if e.quiet]
    assert {e.name for e in quiet} == {"intake_polling", "stage_reserved", "agent_events"}
    assert all(lines.line(e) is None for e in quiet)
    assert lines.line(samples()[0]) is None  # supervisor_started: the header already says it
    intake = ee.Intake(ts=TS, issues=4, rejected=1, iteration=1)
    assert lines.line(intake) == ("info", "12:00:01 intake: 4 issues, 1 rejected")
    assert lines.line(ee.Intake(ts=TS, issues=4, rejected=1, iteration=2)) is None
    assert lines.line(samples()[7]) is not None  # intake failed: the next result is news again
    assert lines.line(intake) is not None


def test_printer_writes_json_lines_and_leaves_quiet_events_out() -> None:
    out = io.StringIO()
    printer = Printer(out, as_json=True)
    for event in samples():
        printer(event)
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [p["event"] for p in printed] == [e.name for e in samples() if not e.quiet]
    assert all(list(p) == ["event", "ts", "level", *WIRE[p["event"]]] for p in printed)
