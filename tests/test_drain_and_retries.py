"""Drain (no new work, running stages finish, then a clean exit) and retries that survive a
restart (service/retries.jsonl), against a real Supervisor and real fake-agent processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaos_helpers import supervising, vik
from conftest import Project, base_workflow
from engine_helpers import Harness

from vik_tui.config.loader import load_workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.explain import explain
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.service.rate_holds import RATE_LIMITS_FILE
from vik_tui.engine.service.retries import RETRIES_FILE, PendingRetry, RetryStore
from vik_tui.engine.view import ExplainCode


def retries_file(workflow_path: Path) -> Path:
    result = load_workflow(workflow_path)
    assert result.workflow is not None
    return Layout.for_workflow(result.workflow, result.path).service_dir / RETRIES_FILE


def workflow_of(project: Project, *ids: str, **loop: Any) -> dict[str, Any]:
    """`base_workflow` over todo issues `ids` (A alone by default) that runs until stopped, with
    `loop` over its loop section."""
    project.set_issues([{"id": i, "title": i.lower(), "state": "todo"} for i in ids or ("A",)])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, **loop)
    return wf


async def a_running_b_waiting(project: Project) -> Harness:
    """A and B on todo, one slot, each agent working for a second: a supervisor with A running."""
    wf = workflow_of(project, "A", "B", max_issue_concurrency=1)
    wf["agents"]["codex"]["args"] = {"--sleep": 1.0}
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.StageStarted, issue="A")
    return h


# -- drain -----------------------------------------------------------------------------------------
async def test_drain_lets_the_running_stage_finish_starts_nothing_then_exits(project: Project) -> None:
    h = await a_running_b_waiting(project)
    said = h.supervisor.drain()
    assert said.startswith("draining: 1 running")
    view = h.supervisor.snapshot()
    assert view.draining
    assert explain(view, "B").code == ExplainCode.DRAINING
    assert await h.finish() == 0  # exits by itself once A ended
    finished = h.named(ee.StageFinished)
    assert [(f.issue, f.state) for f in finished] == [("A", "completed")]  # ran to its end, not cancelled
    assert not h.named(ee.StageReserved, issue="B")
    assert len(h.named(ee.DrainFinished)) == 1
    assert not h.named(ee.StageFinished, state="cancelled")  # nothing was stopped to exit


async def test_resume_cancels_a_drain(project: Project) -> None:
    h = await a_running_b_waiting(project)
    h.supervisor.drain()
    h.supervisor.resume()
    await h.wait_event(ee.StageFinished, issue="B", timeout=30)
    assert h.named(ee.DrainCancelled) and not h.named(ee.DrainFinished)
    await h.stop()


async def test_drain_while_a_hook_hangs_waits_for_its_timeout_keeps_the_retry(project: Project) -> None:
    wf = workflow_of(project, hook_timeout_sec=1, retry={"max_attempts": 3, "backoff_sec": 5})
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "sleep 30"}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: h.supervisor.runs.get(("A", "plan")) and h.supervisor.runs[("A", "plan")].active)
    h.supervisor.drain()
    assert await h.finish(timeout=30) == 0
    assert [f.state for f in h.named(ee.StageFinished)] == ["failed"]  # the hook's own timeout ended it
    assert len(h.named(ee.RetryScheduled)) == 1 and len(h.named(ee.StageReserved)) == 1  # scheduled, never started
    kept, warnings = RetryStore(retries_file(project.workflow_path).parent).load()
    assert not warnings and [(r.issue, r.stage, r.attempt) for r in kept] == [("A", "plan", 1)]
    assert h.named(ee.DrainFinished)[0].retries_kept == 1


# -- durable retries -----------------------------------------------------------------------------
async def test_a_restart_in_the_middle_of_a_backoff_keeps_its_schedule(project: Project) -> None:
    wf = workflow_of(project, retry={"max_attempts": 3, "backoff_sec": 6, "max_backoff_sec": 6})
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    path = project.write(wf)
    first = Harness(path).start()
    scheduled = await first.wait_event(ee.RetryScheduled)
    due_wall = time.time() + scheduled.delay_sec
    # the engine's own countdown says a third of the backoff has passed: restart now
    await first.wait_for(lambda: first.supervisor.snapshot().retries[0].due_in <= 4.0)
    await first.stop()  # a clean restart, in the middle of the 6 s backoff
    stopped_at = time.time()
    kept, _ = RetryStore(retries_file(path).parent).load()
    assert [(r.issue, r.stage, r.attempt) for r in kept] == [("A", "plan", 1)]
    assert abs(kept[0].due_at - due_wall) < 0.5

    second = Harness(path).start()
    restored = await second.wait_for(lambda: [e for e in second.named(ee.Log) if "kept from before" in e.message])
    remaining = due_wall - stopped_at
    print(f"\nbackoff 6 s; stopped {6 - remaining:.1f} s into it; restored: {restored[0].message}")
    kept_for = second.supervisor.snapshot().retries[0].due_in
    assert kept_for < 5.0  # what was left of the backoff, not a fresh 6 s
    started = await second.wait_event(ee.StageStarted, timeout=30)
    started_wall = time.time()
    print(f"retry #2 started {started_wall - due_wall:+.2f} s from the original due time")
    assert started.attempt == 2  # the count goes on
    assert started_wall >= due_wall - 0.3  # not restarted from zero, not run at once
    assert started_wall < due_wall + 3  # nor forgotten / pushed back by a fresh backoff
    gave_up = await second.wait_event(ee.RetryGivenUp, timeout=30)
    assert gave_up.attempts == 3  # max_attempts holds across the restart
    assert len(second.named(ee.StageStarted)) == 2
    await second.stop()
    assert RetryStore(retries_file(path).parent).load() == ([], [])


async def test_a_corrupt_or_truncated_retries_file_keeps_the_readable_lines(project: Project) -> None:
    wf = workflow_of(project, "A", "B", retry={"max_attempts": 5, "backoff_sec": 1})
    path = project.write(wf)
    store = retries_file(path)
    store.parent.mkdir(parents=True, exist_ok=True)
    good = PendingRetry("A", "plan", 2, time.time() + 1, "boom", "todo").to_line()
    store.write_text(f'{good}\nnot json at all\n{{"v":1,"issue":"B","stage":"plan","attem')
    h = Harness(path).start()
    started = await h.wait_event(ee.StageStarted, issue="A", timeout=30)
    assert started.attempt == 3
    warnings = [e.message for e in h.named(ee.Log) if e.level == "warning" and RETRIES_FILE in e.message]
    assert len(warnings) == 2 and "line 2: not JSON" in warnings[0] and "line 3" in warnings[1]
    assert all("the others are kept" in w for w in warnings)
    await h.wait_event(ee.StageFinished, issue="B")  # B (its line lost) is dispatched afresh, as attempt 1
    assert h.named(ee.StageStarted, issue="B")[0].attempt == 1
    await h.stop()


async def test_a_retry_whose_stage_or_issue_went_away_is_dropped_with_a_reason(project: Project) -> None:
    path = project.write(workflow_of(project))
    store = RetryStore(retries_file(path).parent)
    soon = time.time() + 0.5
    store.save(
        [
            PendingRetry("A", "review", 1, soon, "x", "todo"),  # the stage left the workflow
            PendingRetry("GONE", "plan", 1, soon, "x", "todo"),  # the issue left the tracker
        ]
    )
    h = Harness(path).start()
    await h.wait_for(lambda: len(h.named(ee.RetryDropped)) == 2)
    reasons = {e.issue: e.reason for e in h.named(ee.RetryDropped)}
    assert reasons == {"A": "stage review is no longer in the workflow", "GONE": "issue no longer listed"}
    await h.wait_event(ee.StageFinished, issue="A")
    await h.stop()
    assert not h.named(ee.StageStarted, issue="GONE")
    assert store.load() == ([], [])


def test_kill_9_in_a_backoff_keeps_the_retry_and_runs_it_once(project: Project) -> None:
    wf = workflow_of(project, retry={"max_attempts": 2, "backoff_sec": 3, "max_backoff_sec": 3})
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    path = project.write(wf)
    with supervising(path) as first:
        scheduled = first.wait_event("retry_scheduled")
        first.kill()
    with supervising(path) as again:
        again.wait_event("retry_given_up", timeout=40)
    started = again.named("stage_started")
    assert [e["attempt"] for e in started] == [2]  # once, as attempt 2
    assert scheduled["attempt"] == 2


def test_kill_9_during_a_drain_loses_nothing(project: Project) -> None:
    """The supervisor dies while draining: the pending retry stays; the next start drains nothing
    (a drain is a request to that process, not a setting) and runs it when due."""
    wf = workflow_of(project, "A", "B", retry={"max_attempts": 2, "backoff_sec": 8, "max_backoff_sec": 8})
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    path = project.write(wf)
    with supervising(path) as first:
        first.wait_event("retry_scheduled")
        vik("stop", "--drain", str(path), timeout=30)
        first.kill()
    pending, warnings = RetryStore(retries_file(path).parent).load()
    assert not warnings and {r.issue for r in pending} and {r.issue for r in pending} <= {"A", "B"}
    with supervising(path) as again:
        again.wait_event("retry_given_up", timeout=40)
    assert again.named("stage_started", attempt=2)


def test_kill_9_during_the_retries_file_write_leaves_a_whole_file(tmp_path: Path) -> None:
    """A writer killed with SIGKILL at random moments: the file is always the old or the new set."""
    script = (
        "import sys, time\n"
        "from vik_tui.engine.service.retries import PendingRetry, RetryStore\n"
        "store = RetryStore(__import__('pathlib').Path(sys.argv[1]))\n"
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        "    store.save([PendingRetry(f'I-{i}', 'plan', n, time.time(), 'e' * 2000, 'todo') for i in range(200)])\n"
    )
    store = RetryStore(tmp_path)
    for round_ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
        deadline = time.monotonic() + 20
        while not store.path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 + 0.037 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        retries, warnings = store.load()
        assert not warnings
        assert len(retries) == 200 and len({r.attempt for r in retries}) == 1  # one whole set, never a mix
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != RETRIES_FILE]
    assert all(name.startswith(f".{RETRIES_FILE}.") for name in leftovers)  # temp files are ignored


async def test_a_run_with_nothing_to_keep_writes_no_retries_or_holds_file(project: Project) -> None:
    """No pending retry and no rate-limit hold: neither file is written (a start used to write
    both, each an fsynced atomic write, before the first pull); a retry still is."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    path = project.write(base_workflow(project))
    h = Harness(path).start()
    await h.finish()
    service = retries_file(path).parent
    assert h.named(ee.StageFinished) and not retries_file(path).exists()
    assert not (service / RATE_LIMITS_FILE).exists()
    store = RetryStore(service)  # a missing file: nothing to write until there is a retry
    store.load()
    store.save([])
    assert not retries_file(path).exists()
    store.save([PendingRetry("A", "plan", 1, time.time() + 60, "failed", "todo", None)])
    assert retries_file(path).exists()
