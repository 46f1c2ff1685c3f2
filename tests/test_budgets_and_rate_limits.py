"""Token budgets (`loop.budget`) and provider rate limits, against a real Supervisor and the
fake agents printing Codex's and Claude Code's real shapes (tests/data/reference)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from chaos_helpers import layout_of, supervising, vik
from conftest import FAKE_CLAUDE, Project, base_workflow
from engine_helpers import Harness

from vik_tui.agents.events import RateLimit
from vik_tui.config.loader import load_workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.explain import explain
from vik_tui.engine.rate_limits import MAX_WAIT_SEC, MIN_WAIT_SEC, RateLimits, clamp
from vik_tui.engine.service.rate_holds import RATE_LIMITS_FILE
from vik_tui.engine.view import ExplainCode, HoldKind


def claude(wf: dict, mode: str, **args: object) -> None:
    wf["agents"]["claude"] = {
        "runtime": "claude_code",
        "model": "claude-sonnet-4-6",
        "command": str(FAKE_CLAUDE),
        "args": {"--mode": mode, **args},
    }
    wf["issue"]["stages"]["plan"]["agent"] = "claude"


# -- budgets -------------------------------------------------------------------------------------
async def test_a_session_over_its_token_budget_is_stopped_and_not_retried(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(
        max_iterations=None, budget={"session_tokens": 2500}, retry={"max_attempts": 3, "backoff_sec": 0.2}
    )
    claude(wf, "burn")
    h = Harness(project.write(wf)).start()
    finished = await h.wait_event(ee.StageFinished, timeout=30)
    assert finished.state == "failed"
    assert finished.reason is not None and finished.reason.startswith("budget: ")
    used = int(finished.reason.split()[1])
    assert used > 2500 and finished.reason.endswith("> 2500 (loop.budget.session_tokens)")
    await h.wait_event(ee.RetryGivenUp)
    n = len(h.named(ee.Intake))
    await h.wait_for(lambda: len(h.named(ee.Intake)) >= n + 2)  # later pulls start nothing either
    assert len(h.named(ee.StageStarted)) == 1 and not h.named(ee.RetryScheduled)
    assert h.named(ee.RetryGivenUp)[0].reason == finished.reason
    said = explain(h.supervisor.snapshot(), "A")
    assert said.code == ExplainCode.GAVE_UP and "budget: " in said.words
    print(f"\n{said.words}")
    await h.stop()


async def test_the_daily_budget_pauses_dispatch_and_survives_a_restart(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_issue_concurrency=1, max_iterations=None, budget={"daily_tokens": 300})
    path = project.write(wf)  # the fake codex spends 240 in + 90 out = 330 tokens
    h = Harness(path).start()
    spent = await h.wait_event(ee.BudgetSpent)
    assert (spent.used, spent.limit) == (330, 300) and spent.resumes_at.endswith("T00:00:00Z")
    n = len(h.named(ee.Intake))
    await h.wait_for(lambda: len(h.named(ee.Intake)) >= n + 2)  # two more pulls: B still waits
    assert not h.named(ee.StageReserved, issue="B")
    view = h.supervisor.snapshot()
    assert [hold.kind for hold in view.holds] == [HoldKind.BUDGET] and view.budget.used_today == 330
    said = explain(view, "B")
    assert said.code == ExplainCode.BUDGET_SPENT
    print(f"\n{said.words}")
    await h.stop()

    again = Harness(path).start()  # the count is rebuilt from today's session files
    await again.wait_event(ee.BudgetSpent)
    assert again.supervisor.snapshot().budget.used_today == 330
    assert not again.named(ee.StageReserved)
    await again.stop()

    raised = dict(wf, loop=dict(wf["loop"], budget={"daily_tokens": 10_000}))
    third = Harness(project.write(raised)).start()  # a higher budget lets B run
    await third.wait_event(ee.StageFinished, issue="B")
    await third.stop()


def test_doctor_refuses_a_budget_of_zero_or_less(project: Project) -> None:
    project.set_issues([])
    for value in (0, -5):
        wf = base_workflow(project)
        wf["loop"]["budget"] = {"session_tokens": value, "daily_tokens": value}
        result = load_workflow(project.write(wf))
        found = {d.pointer: d for d in result.errors}
        for key in ("loop.budget.session_tokens", "loop.budget.daily_tokens"):
            assert found[key].code == "non_positive_number", result.errors
            assert f"must be greater than 0 (got {value})" in found[key].message


# -- rate limits ---------------------------------------------------------------------------------
async def test_a_claude_rate_limit_holds_new_sessions_until_the_reset(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_issue_concurrency=1, max_iterations=None, retry={"max_attempts": 2, "backoff_sec": 0.2})
    claude(wf, "rate_limited", **{"--reset-in": 4})
    h = Harness(project.write(wf)).start()
    limited = await h.wait_event(ee.RateLimited, timeout=30)
    assert limited.runtime == "claude_code" and limited.reason == "claude.five_hour limit reached"
    scheduled = await h.wait_event(ee.RetryScheduled)
    assert 2.0 < scheduled.delay_sec <= 4.5  # after the reset, not the 0.2 s backoff
    view = h.supervisor.snapshot()
    waiting = next(i for i in ("A", "B") if not h.named(ee.StageReserved, issue=i))
    said = explain(view, waiting)
    assert said.code == ExplainCode.RATE_LIMITED, said
    retry_said = explain(view, "A" if waiting == "B" else "B")
    assert retry_said.code == ExplainCode.RETRY_WAIT and "rate limit resets" in retry_said.words
    print(f"\n{said.words}\n{retry_said.words}")
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) >= 2, timeout=30)
    second = h.named(ee.StageStarted)[1]
    assert datetime.fromisoformat(second.ts) >= datetime.fromisoformat(
        limited.until
    )  # nothing of claude started before the reset
    await h.stop()


async def test_a_codex_429_after_its_own_retries_backs_off_that_runtime(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, retry={"max_attempts": 3, "backoff_sec": 1})
    wf["agents"]["codex"]["args"] = {"--mode": "rate_429"}
    h = Harness(project.write(wf)).start()
    limited = await h.wait_event(ee.RateLimited)
    assert limited.runtime == "codex" and "429 Too Many Requests" in limited.reason
    scheduled = await h.wait_event(ee.RetryScheduled)
    assert 55 <= scheduled.delay_sec <= 60  # the runtime's backoff, not the 1 s retry backoff
    said = explain(h.supervisor.snapshot(), "A")
    assert said.code == ExplainCode.RETRY_WAIT and "codex rate limit" in said.words
    await h.stop()


@pytest.mark.parametrize(
    ("reset_in", "expected", "note"),
    [(-3600, MIN_WAIT_SEC, "is in the past"), (3e8, MAX_WAIT_SEC, "more than 7 days ahead"), (600, 600, None)],
)
def test_a_reset_time_in_the_past_or_years_ahead_is_clamped_and_said(
    reset_in: float, expected: float, note: str | None
) -> None:
    now = time.time()
    event = RateLimit.observed("claude.five_hour", 100.0, _iso(now + reset_in), {"type": "rate_limit_event"})
    found = RateLimits().observe("claude_code", event, now)
    assert found is not None
    hold, said = found
    assert abs(hold.until - now - expected) < 2
    assert (said is None) if note is None else (note in (said or ""))


async def test_a_past_reset_from_a_real_process_is_clamped_and_said(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None)
    claude(wf, "rate_limited", **{"--reset-in": -7200})
    h = Harness(project.write(wf)).start()
    limited = await h.wait_event(ee.RateLimited)
    warning = await h.wait_for(lambda: [e for e in h.named(ee.Log) if "is in the past" in e.message])
    assert "waiting 30 s" in warning[0].message
    assert datetime.fromisoformat(limited.until).timestamp() > time.time() + 20
    await h.stop()


def test_clamp_reads_junk_as_a_backoff() -> None:
    until, note = clamp("not a time", 1000.0)
    assert until == 1060.0 and note is not None and "unreadable" in note


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- rate limits across a restart ----------------------------------------------------------------
def _rate_limits_file(path: Path) -> Path:
    return layout_of(path).service_dir / RATE_LIMITS_FILE


def test_a_rate_limit_hold_survives_a_kill_9_and_the_next_supervisor_waits_for_the_reset(project: Project) -> None:
    """A's session hits Claude's limit (reset 30 s ahead: room for two starts on a loaded
    machine) and gives up; B waits behind the hold. The supervisor is killed with SIGKILL; the
    next one, a fresh process, must still wait for the reset before it starts anything of
    claude (before: it started B at once)."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_issue_concurrency=1, max_iterations=None)  # max_attempts 1: A gives up
    claude(wf, "rate_limited", **{"--reset-in": 30})
    path = project.write(wf)
    with supervising(path) as first:
        limited = first.wait_event("rate_limited")
        first.wait_event("retry_given_up", issue="A")
        first.kill()  # no clean shutdown: what is on disk is what was written before it was said
    assert len(first.named("stage_started")) == 1
    until = datetime.fromisoformat(limited["until"]).timestamp()
    offline = vik("explain", "B", str(path))  # no supervisor: from the files it left
    assert "[rate_limited]" in offline.stdout and "no supervisor is running" in offline.stdout, offline

    with supervising(path) as second:
        restored = second.wait_event("rate_limited")
        assert (restored["runtime"], restored["until"], restored["reason"]) == (
            "claude_code",
            limited["until"],
            "claude.five_hour limit reached",
        )
        kept = [e for e in second.named("log") if "kept from before the restart" in e["message"]]
        assert kept and f"until {limited['until']}" in kept[0]["message"]
        waiting = vik("explain", "B", str(path))  # asks the running supervisor
        assert "[rate_limited]" in waiting.stdout and "claude_code is rate-limited until" in waiting.stdout, waiting
        started = second.wait_event("stage_started", timeout=60)
    print(f"\nhold until {limited['until']}; after the restart the first stage started at {started['ts']}")
    assert datetime.fromisoformat(started["ts"]).timestamp() >= until - 0.5  # not before the reset
    saved = json.loads(_rate_limits_file(path).read_text())  # the hold, written atomically
    assert [(h["runtime"], h["until_utc"]) for h in saved["holds"]] == [("claude_code", limited["until"])]


def _planted(project: Project, text: str) -> tuple[Path, Path]:
    """(a workflow with issue A on the fake codex, its service/rate_limits.json holding `text`)."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None)
    path = project.write(wf)
    store = _rate_limits_file(path)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(text)
    return path, store


async def test_a_damaged_rate_limits_file_keeps_the_readable_holds_and_drops_the_rest(project: Project) -> None:
    now = time.time()
    holds = [
        {"runtime": "codex", "until": now + 600, "reason": "codex.primary limit reached"},
        {"runtime": "claude_code", "until": "soon"},  # unreadable: dropped, said
        {"runtime": "other", "until": now - 5, "reason": "over already"},  # its reset has passed: dropped
    ]
    path, store = _planted(project, json.dumps({"v": 1, "holds": holds, "backoff": {"codex": 240}}))
    h = Harness(path).start()
    try:
        await h.wait_for(lambda: len(h.named(ee.Intake)) >= 2)  # two pulls, each followed by a dispatch
        warnings = [e.message for e in h.named(ee.Log) if e.level == "warning" and RATE_LIMITS_FILE in e.message]
        assert len(warnings) == 1 and "hold #2: until must be a number" in warnings[0]
        assert "the others are kept" in warnings[0]
        view = h.supervisor.snapshot()
        assert [(hold.kind, hold.scope) for hold in view.holds] == [(HoldKind.RATE_LIMIT, "codex")]
        said = explain(view, "A")
        assert said.code == ExplainCode.RATE_LIMITED and "codex.primary limit reached" in said.words
        assert not h.named(ee.StageReserved)
    finally:
        await h.stop()
    rewritten = json.loads(store.read_text())  # without what was dropped; the backoff kept
    assert [h["runtime"] for h in rewritten["holds"]] == ["codex"] and rewritten["backoff"] == {"codex": 240}


@pytest.mark.parametrize("text", ["not json {", "[1, 2]", ""])
async def test_an_unreadable_rate_limits_file_is_said_and_nothing_is_held(project: Project, text: str) -> None:
    path, _store = _planted(project, text)
    h = Harness(path).start()
    try:
        await h.wait_event(ee.StageFinished, issue="A")  # nothing held: A runs
        warnings = [e.message for e in h.named(ee.Log) if e.level == "warning" and RATE_LIMITS_FILE in e.message]
        assert len(warnings) == 1 and "rate limits from before are forgotten" in warnings[0]
    finally:
        await h.stop()
