"""Issue #9, item 2: a supervisor killed with SIGKILL leaves nothing that the next start does
not clean up, and a stage never runs twice at once in one workspace.

The first supervisor runs in a real child process and is killed with `kill -9`; its agent
ignores SIGTERM and has a `setsid` grandchild. The second start must kill both (checking the
recorded start time), give the orphaned session file an `interrupted` outcome, and only then
start the stage again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

from chaos_helpers import HeadlessProcess, chaos_workflow, last_outcome, layout_of, read_pid, records
from conftest import Project, process_running
from engine_helpers import Harness

from vik_tui.engine.engine_events import Log, StageStarted
from vik_tui.engine.processes import descendants
from vik_tui.engine.service.recovery import INTERRUPTED, Entry, Registry


def test_kill_9_then_restart_kills_leftovers_closes_the_file_and_runs_once(project: Project, tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "setsid_hang", pidfile=str(runs), child_pidfile=str(child), stubborn=True)
    workflow = project.write(wf)
    first = HeadlessProcess(workflow)
    try:
        started = first.wait_event("stage_started")
        agent = started["pid"]
        grandchild = read_pid(child)
        first.kill()  # kill -9: no cleanup at all
        assert process_running(agent) and process_running(grandchild)  # what issue #9 saw
        orphaned = Path(started["session_file"])
        assert all(r.get("kind") != "outcome" for r in records(orphaned))

        # the restart: its agent completes, so the run can end on its own
        child.unlink()
        wf["agents"]["codex"]["args"]["--mode"] = "setsid_complete"
        project.write(wf)
        began = time.monotonic()
        second = HeadlessProcess(workflow)
        second.wait_event("stage_started")
        recovered = time.monotonic() - began
        # before the new agent started, the old one and its grandchild were gone
        assert not process_running(agent) and not process_running(grandchild)
        assert second.wait() == 0, second.stderr()
        logged = [e for e in second.named("log") if e["message"].startswith("recovery:")]
        assert logged and "killed" in logged[0]["message"], second.tail()
        outcome = last_outcome(orphaned)
        assert (outcome["state"], outcome["reason"]) == ("failed", INTERRUPTED)
        starts = [line.split() for line in runs.read_text().splitlines()]
        assert [kind for kind, _pid in starts] == ["start", "start", "end"]  # never two at once
        assert recovered < 30
        registry = layout_of(workflow).service_dir / "running"
        assert not list(registry.glob("*.json"))  # a clean stop leaves no registry entry
    finally:
        first.kill()
        for pidfile in (child,):
            if pidfile.exists():
                os.kill(int(pidfile.read_text()), 9) if process_running(int(pidfile.read_text())) else None


async def test_sweep_never_kills_a_reused_pid(project: Project, tmp_path: Path) -> None:
    """An entry whose pid now belongs to another process (another start time) is left alone."""
    wf = chaos_workflow(project, "setsid_complete", child_pidfile=str(tmp_path / "g.pid"))
    workflow = project.write(wf)
    layout = layout_of(workflow)
    stranger = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    try:
        registry = Registry(layout)
        start = descendants.start_time(stranger.pid)
        assert start is not None
        session_file = layout.session_file("C-9", "plan", "0190d7a0-0000-7000-8000-000000000000")
        session_file.parent.mkdir(parents=True)
        session_file.write_bytes(b'{"kind":"message","text":"half')  # cut mid-line by the crash
        entry = Entry("0190d7a0-0000-7000-8000-000000000000", str(session_file), "C-9", "plan", 1, "dead/x/")
        entry.pid = entry.pgid = stranger.pid
        entry.start_time = start + 1  # the recorded process started at another time
        entry.boot_id = descendants.boot_id()
        registry.record(entry)
        report = await registry.sweep(grace_sec=1)
        assert stranger.poll() is None and report.killed == []
        assert report.interrupted == [str(session_file)]
        lines = session_file.read_bytes().splitlines()
        assert lines[0] == b'{"kind":"message","text":"half'  # left as it was, on its own line
        assert last_outcome_reason(lines[-1]) == INTERRUPTED
    finally:
        stranger.kill()
        stranger.wait()


def test_the_agents_pid_goes_into_its_entry_in_place(project: Project) -> None:
    """`agent_started` rewrites the entry within the room it was written with (the same file,
    no temp file and rename), the outcome still fits after it, and an entry without that room
    (or none at all) is written anew."""
    layout = layout_of(project.write(chaos_workflow(project, "hang")))
    registry = Registry(layout)
    uuid = "0190d7a0-0000-7000-8000-000000000001"
    entry = Entry(uuid, "/nowhere/s.jsonl", "C-1", "plan", 1, "sup/x/")
    registry.record(entry)
    path = registry.directory / f"{uuid}.json"
    before = path.stat()
    registry.agent_started(entry, os.getpid())
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)  # the same file, rewritten
    assert [(e.pid, e.pgid, e.start_time) for e in registry.entries()] == [
        (os.getpid(), os.getpid(), descendants.start_time(os.getpid()))
    ]
    registry.note_outcome(entry, "failed", "x" * 900)  # a full disk's outcome still has room
    assert [e.outcome for e in registry.entries()] == [{"state": "failed", "reason": "x" * 900}]

    path.write_text(f'{{"session_uuid": "{uuid}"}}')  # no room: an entry of an earlier version
    registry.agent_started(entry, os.getpid())
    assert [e.pid for e in registry.entries()] == [os.getpid()]
    path.unlink()  # gone: written anew
    registry.agent_started(entry, os.getpid())
    assert [e.pid for e in registry.entries()] == [os.getpid()]
    assert sorted(p.name for p in registry.directory.iterdir()) == [f"{uuid}.json"]  # no temp file left


def last_outcome_reason(line: bytes) -> str:
    import json

    record = json.loads(line)
    outcome = record.get("outcome", record)  # the final record carries the outcome
    return str(outcome["reason"])


async def test_registry_entry_is_durable_before_the_first_byte_and_gone_after(project: Project) -> None:
    wf = chaos_workflow(project, "hang")
    h = Harness(project.write(wf)).start()
    started = await h.wait_event(StageStarted)
    entries = h.supervisor.registry.entries()
    assert [(e.pid, e.session_file) for e in entries] == [(started.pid, started.session_file)]
    assert entries[0].start_time == descendants.start_time(started.pid)
    await h.stop()
    assert h.supervisor.registry.entries() == []
    assert not (h.supervisor.registry.directory / "supervisor.json").exists()


async def test_a_clean_start_reports_no_recovery(project: Project) -> None:
    wf = chaos_workflow(project, "setsid_complete", child_pidfile="/dev/null")
    wf["agents"]["codex"]["args"]["--mode"] = "complete"
    h = Harness(project.write(wf)).start()
    await h.finish()
    assert not [e for e in h.named(Log) if e.message.startswith("recovery:")]
    assert h.supervisor.recovery is not None and not h.supervisor.recovery.anything
    await asyncio.sleep(0)
