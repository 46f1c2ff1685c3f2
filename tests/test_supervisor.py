"""Dispatch, retries, reconciliation, hooks and commands of the Supervisor, all with real processes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

import pytest
from conftest import Project, base_workflow
from engine_helpers import Harness

from vik_tui.engine import engine_events as ee
from vik_tui.engine.processes.proc import group_alive
from vik_tui.engine.stages.facts import SessionFacts
from vik_tui.engine.view import EngineView, IntakeStatus, RunStatus, SessionState, Tokens


def stage(state: str, prompt: str = "go {{ issue.id }}", **extra) -> dict:
    return {"when": {"state": state}, "agent": "codex", "prompt": prompt, **extra}


async def test_dispatch_exact_state_file_order_and_several_stages(project: Project) -> None:
    project.set_issues(
        [
            {"id": "A", "title": "a", "state": "todo"},
            {"id": "B", "title": "b", "state": "Todo"},
            {"identifier": "C", "title": "c", "status": "work"},
        ]
    )
    wf = base_workflow(project)
    wf["issue"]["stages"] = {"plan": stage("todo"), "lint": stage("todo"), "impl": stage("work")}
    h = Harness(project.write(wf)).start()
    assert await h.finish() == 0
    reserved = [(e.issue, e.stage) for e in h.named(ee.StageReserved)]
    assert reserved == [("A", "plan"), ("A", "lint"), ("C", "impl")]
    finished = {(e.issue, e.stage): e for e in h.named(ee.StageFinished)}
    assert set(finished) == set(reserved)
    assert all(e.state == "completed" for e in finished.values())
    for e in finished.values():
        lines = Path(e.session_file).read_text().splitlines()
        assert json.loads(lines[-1])["outcome"]["state"] == "completed"
        assert Path(e.session_file).parent.name == e.issue
        assert Path(e.session_file).name.startswith(e.stage + "-")


async def test_concurrency_counts_distinct_issues(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_issue_concurrency=1, max_iterations=None)
    wf["issues"]["pull"]["idle_sec"] = 1
    wf["agents"]["codex"]["args"] = {"--sleep": 0.5}
    wf["issue"]["stages"] = {"plan": stage("todo"), "lint": stage("todo")}
    h = Harness(project.write(wf))
    seen_active: list[set[str]] = []
    h.supervisor.subscribe(lambda e: seen_active.append({r.issue_id for r in h.supervisor.runs.values() if r.active}))
    h.start()
    await h.wait_for(lambda: len(h.named(ee.StageFinished)) == 4, timeout=30)
    await h.stop()
    assert max(len(s) for s in seen_active) == 1
    starts = [(e.issue, e.stage) for e in h.named(ee.StageReserved)]
    assert starts[:2] == [("A", "plan"), ("A", "lint")]  # both stages of A run together


async def test_completed_stage_not_rerun_while_state_unchanged(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = 4
    wf["issues"]["pull"]["idle_sec"] = 1
    h = Harness(project.write(wf)).start()
    await h.finish()
    assert len(h.named(ee.Intake)) == 4
    assert len(h.named(ee.StageReserved)) == 1


async def test_stage_runs_again_after_issue_leaves_and_returns(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 1
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.StageFinished)
    project.set_issues([{"id": "A", "title": "a", "state": "blocked"}])
    n = len(h.named(ee.Intake))
    await h.wait_for(lambda: len(h.named(ee.Intake)) > n + 1)
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    await h.wait_for(lambda: len(h.named(ee.StageFinished)) == 2)
    await h.stop()
    assert len(h.supervisor.runs[("A", "plan")].sessions) == 2


async def test_failed_stage_retries_with_capped_backoff_then_gives_up(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["retry"] = {"max_attempts": 3, "backoff_sec": 0.2, "max_backoff_sec": 0.3}
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    h = Harness(project.write(wf)).start()
    await h.finish()
    retries = h.named(ee.RetryScheduled)
    assert [(r.attempt, r.delay_sec) for r in retries] == [(2, 0.2), (3, 0.3)]
    finished = h.named(ee.StageFinished)
    assert [f.attempt for f in finished] == [1, 2, 3]
    assert all(f.state == "failed" and f.reason == "model refused: context window exceeded" for f in finished)
    gave_up = h.named(ee.RetryGivenUp)
    assert len(gave_up) == 1 and gave_up[0].attempts == 3
    run = h.supervisor.runs[("A", "plan")]
    assert len(run.sessions) == 3 and run.gave_up


async def test_retry_waits_only_while_issue_keeps_state(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, retry={"max_attempts": 3, "backoff_sec": 30, "max_backoff_sec": 30})
    wf["issues"]["pull"]["idle_sec"] = 1
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.RetryScheduled)
    snap = h.supervisor.snapshot()
    assert snap.retries[0].attempt == 1 and 25 < snap.retries[0].due_in <= 30
    project.set_issues([{"id": "A", "title": "a", "state": "done"}])
    dropped = await h.wait_event(ee.RetryDropped)
    assert dropped.reason == "issue moved to done"
    await h.stop()
    assert len(h.named(ee.StageStarted)) == 1


async def test_manual_retry_runs_now_and_resets_count(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, retry={"max_attempts": 2, "backoff_sec": 60, "max_backoff_sec": 60})
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.RetryScheduled)
    assert h.supervisor.retry("A", "plan") == "retrying"
    await h.wait_for(lambda: len(h.named(ee.StageFinished)) == 2)
    await h.stop()
    assert [e.attempt for e in h.named(ee.StageFinished)][:2] == [1, 1]
    assert len(h.supervisor.runs[("A", "plan")].sessions) == 2


async def test_agent_that_moves_its_issue_keeps_working_and_completes(project: Project) -> None:
    """vik's rule (ADR 0003), our default: the tracker changing never stops a running stage.
    The agent moves its own issue first (as vik's prompts ask, usually as its last act), then
    keeps working; intake sees the move several times; the stage still completes."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    gate = project.root / "go-on"
    agent = project.root / "agent.sh"
    agent.write_text(
        "#!/bin/sh\n"
        f'printf \'[{{"id":"A","title":"a","state":"review"}}]\' > {project.tracker}\n'
        f"while [ ! -e {gate} ]; do sleep 0.05; done\n"  # keep working until the test saw the moves
        f'exec {Path(__file__).parent / "fakes" / "fake_codex"} "$@"\n'
    )
    agent.chmod(0o755)
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, reconcile_grace_sec=0.1, stall_timeout_sec=60)
    wf["issues"]["pull"]["idle_sec"] = 1
    wf["agents"]["codex"]["command"] = str(agent)
    h = Harness(project.write(wf)).start()
    started = await h.wait_event(ee.StageStarted)
    moved = await h.wait_event(ee.IssueMoved)
    seen = len(h.named(ee.Intake))
    await h.wait_for(lambda: len(h.named(ee.Intake)) >= seen + 2)  # more pulls, well past the grace
    assert h.supervisor.runs[("A", "plan")].status == "running"
    gate.touch()
    finished = await h.wait_event(ee.StageFinished)
    await h.stop()
    assert finished.state == "completed", finished.reason
    assert (moved.state, moved.reason) == ("review", "issue moved to review")
    assert moved.describe() == "A/plan issue moved to review; the stage keeps running"
    assert len(h.named(ee.IssueMoved)) == 1 and not h.named(ee.ReconcilePending)  # said once, as information
    assert not group_alive(started.pid)


async def test_reconcile_stops_stage_when_issue_moves(project: Project) -> None:
    """Opt-in (`loop.reconcile: true`, ours): stop a stage whose issue moved or vanished."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, reconcile=True, reconcile_grace_sec=0.3)
    wf["issues"]["pull"]["idle_sec"] = 1
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    wf["issue"]["stages"]["plan"]["hooks"] = {"after_run": "echo {{ issue.outcome.state }} > after_run.txt"}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) == 2)
    pids = [e.pid for e in h.named(ee.StageStarted)]
    project.set_issues([{"id": "A", "title": "a", "state": "review"}])
    a = await h.wait_event(ee.StageFinished, issue="A")
    b = await h.wait_event(ee.StageFinished, issue="B")
    await h.stop()
    assert a.state == "cancelled" and a.reason == "issue moved to review"
    assert b.state == "cancelled" and b.reason == "issue no longer listed"
    assert all(not group_alive(pid) for pid in pids)
    for issue in ("A", "B"):
        assert (h.supervisor.workdir_of(issue) / "after_run.txt").read_text().strip() == "cancelled"


async def test_cancel_command_skips_after_run(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    wf["issue"]["stages"]["plan"]["hooks"] = {"after_run": "touch after_run.txt"}
    h = Harness(project.write(wf)).start()
    started = await h.wait_event(ee.StageStarted)
    assert h.supervisor.cancel("A", "plan") == "cancelling"
    finished = await h.wait_event(ee.StageFinished)
    await h.stop()
    assert finished.state == "cancelled" and finished.reason == "cancelled by user"
    assert not h.named(ee.RetryScheduled)
    assert not (h.supervisor.workdir_of("A") / "after_run.txt").exists()
    assert not group_alive(started.pid)


async def test_hooks_after_create_once_before_run_failure_aborts(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "it's tricky; rm -rf /", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["retry"] = {"max_attempts": 2, "backoff_sec": 0.1, "max_backoff_sec": 0.1}
    wf["issue"]["hooks"] = {"after_create": "echo {{ issue.title | shquote }} >> created.txt"}
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "echo nope >&2; exit 3", "after_run": "touch after.txt"}
    h = Harness(project.write(wf)).start()
    await h.finish()
    workdir = h.supervisor.workdir_of("A")
    assert (workdir / "created.txt").read_text() == "it's tricky; rm -rf /\n"  # once, though two attempts ran
    assert not h.named(ee.StageStarted)
    finished = h.named(ee.StageFinished)
    assert len(finished) == 2
    assert finished[0].state == "failed" and finished[0].reason == "hook before_run exited with code 3: nope"
    hooks = [(e.hook, e.ok, e.exit_code) for e in h.named(ee.HookFinished)]
    assert hooks == [("after_create", True, 0), ("before_run", False, 3), ("before_run", False, 3)]
    assert not (workdir / "after.txt").exists()
    records = [json.loads(line) for line in Path(finished[0].session_file).read_text().splitlines()]
    assert [r["kind"] for r in records] == ["error"] and records[0]["outcome"]["state"] == "failed"


async def test_after_create_runs_once_before_any_stage_of_the_issue(project: Project) -> None:
    """Two stages on one state: the second waits for the first one's slow after_create (a
    `git clone`), so neither before_run nor agent starts in a half-made workspace."""
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["issue"]["hooks"] = {"after_create": "sleep 0.6; echo cloned > repo.txt; echo x >> created.txt"}
    check = {"before_run": "test -f repo.txt && echo {{ issue.stage }} >> order.txt"}
    wf["issue"]["stages"] = {"plan": stage("todo", hooks=check), "lint": stage("todo", hooks=check)}
    h = Harness(project.write(wf)).start()
    await h.finish()
    workdir = h.supervisor.workdir_of("A")
    assert (workdir / "created.txt").read_text() == "x\n"  # once
    assert sorted((workdir / "order.txt").read_text().split()) == ["lint", "plan"]
    assert [(e.stage, e.state) for e in h.named(ee.StageFinished)] in (
        [("plan", "completed"), ("lint", "completed")],
        [("lint", "completed"), ("plan", "completed")],
    )
    hooks = [e.hook for e in h.named(ee.HookFinished)]
    assert hooks[0] == "after_create" and hooks.count("after_create") == 1


async def test_failed_after_create_fails_every_waiting_stage(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["issue"]["hooks"] = {"after_create": "sleep 0.3; echo 'clone failed' >&2; exit 128"}
    wf["issue"]["stages"] = {"plan": stage("todo"), "lint": stage("todo")}
    h = Harness(project.write(wf)).start()
    await h.finish()
    finished = h.named(ee.StageFinished)
    assert sorted(e.stage for e in finished) == ["lint", "plan"]
    assert all(e.state == "failed" and e.reason == "hook after_create exited with code 128: clone failed"
               for e in finished)  # fmt: skip
    assert not h.named(ee.StageStarted) and len(h.named(ee.HookFinished)) == 1
    assert not h.supervisor.workdir_of("A").exists()  # removed: the next attempt starts afresh


async def test_prompt_is_rendered_with_context_and_exec(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "prompt_seen.txt"
    project.set_issues([{"id": "A", "title": "Fix it", "state": "todo", "priority": "high"}])
    wf = base_workflow(project)
    prompt_file = project.root / "prompts" / "plan.md"
    prompt_file.parent.mkdir()
    prompt_file.write_text(
        "{{ issue.id }} {{ issue.title }} {{ issue.priority }} {{ issue.stage }} "
        "in {{ issue.workdir }} !`exec(echo hi-from-exec; pwd)`\n"
    )
    wf["issue"]["stages"]["plan"] = {"when": {"state": "todo"}, "agent": "codex", "prompt_file": "prompts/plan.md"}
    wf["agents"]["codex"]["command"] = f"{project.root}/agent.sh"
    (project.root / "agent.sh").write_text(
        f'#!/bin/sh\nFAKE_PROMPT_OUT={out} exec {Path(__file__).parent / "fakes" / "fake_codex"} "$@"\n'
    )
    (project.root / "agent.sh").chmod(0o755)
    h = Harness(project.write(wf)).start()
    await h.finish()
    text = out.read_text()
    assert text.startswith("A Fix it high plan in ")
    # one trailing newline dropped, as vik renders; exec() ran in the supervisor's cwd, as vik runs it
    assert text.endswith(f"hi-from-exec\n{os.getcwd()}")
    assert h.named(ee.StageFinished)[0].state == "completed"


async def test_prompt_with_unknown_variable_fails_stage_clearly(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["prompt"] = "{{ issue.nope }}"
    h = Harness(project.write(wf)).start()
    await h.finish()
    reason = h.named(ee.StageFinished)[0].reason
    assert reason.startswith("prompt render failed: stage plan prompt: undefined variable")
    assert "nope" in reason


async def test_bad_payloads_never_stop_the_loop(project: Project) -> None:
    script = project.root / "pull.sh"
    counter = project.root / "n"
    script.write_text(
        "#!/bin/sh\nn=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n\n"
        "case $n in 1) echo 'tracker down' >&2; exit 1;; 2) echo 'not json';; 3) echo '{\"a\":1}';;\n"
        '*) echo \'[{"id":"../x","title":"t","state":"todo"},{"id":"A","state":"todo"},'
        '{"id":"B","title":"b","state":"todo"}]\';; esac\n'
    )
    script.chmod(0o755)
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = 4
    wf["issues"]["pull"] = {"command": "./pull.sh", "idle_sec": 1}
    h = Harness(project.write(wf)).start()
    await h.finish()
    failed = h.named(ee.IntakeFailed)
    assert [f.error.split(":")[0] for f in failed] == [
        "pull command exited with code 1",
        "pull command output is not JSON (Expecting value at line 1 column 1)",
        "pull command output must be a JSON array (got dict)",
    ]
    assert failed[0].exit_code == 1 and "tracker down" in failed[0].stderr
    rejected = {e.id: e.reason for e in h.named(ee.IssueRejected)}
    assert "unsafe issue id '../x'" in rejected["../x"]
    assert rejected["A"] == "issue A: missing `title`"
    assert [e.issue for e in h.named(ee.StageFinished)] == ["B"]
    assert counter.read_text().strip() == "4"
    assert not (h.supervisor.layout.root / "x").exists()


async def test_state_file_and_daily_logs(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    h = Harness(project.write(base_workflow(project))).start()
    await h.wait_event(ee.SupervisorStarted)
    layout = h.supervisor.layout
    assert layout.root == project.root / ".vik" / "workflows" / str(project.workflow_path).replace("/", "-")
    text = layout.state_file.read_text()
    state = json.loads(text)
    assert list(state) == [  # vik's fields, in vik's order, pretty-printed without a trailing newline
        "workflow_path", "cwd", "pid", "port", "bind_address", "started_at", "log_dir", "sessions_dir", "command",
        "pid_start_time",  # ours, last: with the pid it names this process and no other (vik reads past it)
    ]  # fmt: skip
    assert not text.endswith("\n") and state["pid"] == os.getpid() and state["port"] == 0
    assert state["started_at"].endswith("Z") and state["command"] == f"vik-tui run {project.workflow_path}"
    await h.finish()
    assert not layout.state_file.exists()  # removed at a clean exit, as vik does
    logs = list(layout.logs_dir.glob("vik.log.*"))
    assert len(logs) == 1
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert all(list(r)[:3] == ["timestamp", "level", "message"] and list(r)[-1] == "target" for r in records)
    events = [r["event"] for r in records]
    assert "intake" in events and "stage_started" in events and "stage_finished" in events
    assert {r["level"] for r in records} <= {"INFO", "WARN", "ERROR"}


async def test_hot_reload_applies_clean_config_and_keeps_last_good(project: Project) -> None:
    project.set_issues([])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 1
    h = Harness(project.write(wf), watch=True).start()
    await h.wait_event(ee.Intake)
    await asyncio.wait_for(h.supervisor.config_watched.wait(), 30)  # watched from a thread of its own
    wf["issue"]["stages"]["plan"]["prompt"] = "changed"
    project.write(wf)
    await h.wait_event(ee.ConfigReloaded)
    assert h.supervisor.workflow.issue.stages["plan"].prompt == "changed"
    project.write("loop: [broken\n")
    rejected = await h.wait_event(ee.ConfigRejected)
    assert rejected.errors[0].code == "yaml_syntax"
    assert h.supervisor.workflow.issue.stages["plan"].prompt == "changed"
    await h.stop()


async def test_snapshot_shape(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo", "labels": ["x"]}])
    h = Harness(project.write(base_workflow(project))).start()
    await h.finish()
    snap = h.supervisor.snapshot()
    assert isinstance(snap, EngineView)
    assert snap.tokens == Tokens(input=240, output=90, cache_read=24)
    issue = snap.issues[0]
    assert issue.id == "A" and issue.extra == {"labels": ["x"]}
    stage_run = issue.runs[0]
    assert stage_run.status == RunStatus.COMPLETED and stage_run.session and stage_run.session.agent_session_id
    assert issue.sessions == stage_run.history and issue.tokens_total == 240 + 90
    assert snap.intake.status == IntakeStatus.DONE and snap.active_run_count == 0
    assert snap.find_issue("A") is issue and snap.find_issue("nope") is None


async def test_due_retry_waits_for_a_free_slot(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "work"}])
    wf = base_workflow(project)
    fake = wf["agents"]["codex"]["command"]
    wf["loop"].update(
        max_issue_concurrency=1,
        max_iterations=None,
        retry={"max_attempts": 2, "backoff_sec": 0.1, "max_backoff_sec": 0.1},
    )
    wf["issues"]["pull"]["idle_sec"] = 1
    wf["agents"] = {
        "bad": {"runtime": "codex", "model": "m", "command": fake, "args": {"--mode": "turn_failed"}},
        "slow": {"runtime": "codex", "model": "m", "command": fake, "args": {"--sleep": 1.0}},
    }
    wf["issue"]["stages"] = {
        "plan": {"when": {"state": "todo"}, "agent": "bad", "prompt": "x"},
        "work": {"when": {"state": "work"}, "agent": "slow", "prompt": "x"},
    }
    h = Harness(project.write(wf))
    most_active = []
    h.supervisor.subscribe(
        lambda e: most_active.append(len({r.issue_id for r in h.supervisor.runs.values() if r.active}))
    )
    h.start()
    await h.wait_for(lambda: len(h.named(ee.StageFinished, issue="A")) == 2, timeout=30)
    await h.stop()
    assert max(most_active) == 1
    order = [(e.name, e.issue, e.attempt) for e in h.events if isinstance(e, ee.StageStarted | ee.StageFinished)]
    assert order.index(("stage_finished", "B", 1)) < order.index(("stage_started", "A", 2))


async def test_pause_resume_and_poll_now(project: Project) -> None:
    project.set_issues([])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 3600  # only poll_now / resume can trigger a second cycle
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.Intake)
    # the idle wait (and its countdown) begins just after the cycle's Intake event, not with it
    await h.wait_for(lambda: 3500 < (h.supervisor.snapshot().intake.next_poll_in or 0) <= 3600)
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    h.supervisor.poll_now()
    await h.wait_for(lambda: len(h.named(ee.Intake)) == 2)
    await h.wait_event(ee.StageFinished)
    h.supervisor.pause()
    snap = h.supervisor.snapshot()
    assert snap.intake.status == IntakeStatus.PAUSED and snap.intake.paused
    h.supervisor.poll_now()  # paused: nothing is pulled
    await h.wait_for(lambda: h.supervisor.snapshot().intake.next_poll_in is None)
    assert len(h.named(ee.Intake)) == 2
    h.supervisor.resume()
    await h.wait_for(lambda: len(h.named(ee.Intake)) == 3)
    await h.stop()
    assert [type(e) for e in h.events if isinstance(e, ee.IntakePaused | ee.IntakeResumed)] == [
        ee.IntakePaused,
        ee.IntakeResumed,
    ]


def test_session_views_are_frozen_copies_and_finished_ones_are_made_once() -> None:
    snap = SessionFacts("A", "plan", 1, "019bc2a0-0000-7000-8000-000000000001", "/s/plan.jsonl")
    live = snap.to_view()
    assert live.state == SessionState.STARTING and live.state.live
    snap.state = SessionState.RUNNING
    snap.tokens["input"] += 5
    running = snap.to_view()
    assert running is not live and running.state is SessionState.RUNNING and running.tokens == Tokens(input=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        running.pid = 1  # type: ignore[misc]
    snap.state, snap.reason = SessionState.COMPLETED, "completed"
    done = snap.to_view()
    assert done.state is SessionState.COMPLETED and snap.to_view() is done


async def test_an_attempt_that_cannot_be_created_fails_its_stage_and_the_run_ends(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while the attempt itself is made (no session id, a place that raises): the stage
    fails saying so, and a run of one intake cycle still ends (it waited for the stage forever)."""
    from vik_tui.engine.stages import attempt as attempt_mod

    def broken() -> object:
        raise RuntimeError("no session id today")

    monkeypatch.setattr(attempt_mod, "uuid7", broken)
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    h = Harness(project.write(base_workflow(project))).start()
    assert await h.finish(60) == 0
    issue = next(i for i in h.supervisor.snapshot().issues if i.id == "A")
    run = issue.runs[0]
    assert run.status == RunStatus.FAILED
    assert run.reason == "internal error: RuntimeError: no session id today"
    logged = [e.message for e in h.named(ee.Log) if e.level == "error"]
    assert any("A/plan: internal error: RuntimeError: no session id today" in m for m in logged), logged
