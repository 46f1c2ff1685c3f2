"""Issue #9, item 3: grandchildren that call `setsid` die with their stage, in agents and hooks.

Each test starts real processes that leave their process group (`setsid`) and checks, by pid,
that cancel, shutdown, a finished stage and a hook timeout leave none of them running.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from chaos_helpers import chaos_workflow, notices, read_pid, records, wait_until
from conftest import Project, process_running
from engine_helpers import Harness

from vik_tui.engine.engine_events import HookFinished, Log, StageFinished, StageStarted
from vik_tui.engine.processes import descendants


async def _gone(h: Harness, pid: int, timeout: float = 20.0) -> None:
    await h.wait_for(lambda: not process_running(pid), timeout)


async def test_cancel_kills_an_agents_setsid_grandchild(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "setsid_hang", child_pidfile=str(child), stubborn=True)
    h = Harness(project.write(wf)).start()
    await h.wait_event(StageStarted)
    grandchild = await asyncio.to_thread(read_pid, child)
    assert os.getsid(grandchild) == grandchild  # it really left the agent's session
    h.supervisor.cancel("C-1", "plan")
    finished = await h.wait_event(StageFinished)
    assert finished.state == "cancelled"
    await _gone(h, grandchild)
    await h.stop()


async def test_shutdown_kills_an_agents_setsid_grandchild(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "setsid_hang", child_pidfile=str(child))
    h = Harness(project.write(wf)).start()
    await h.wait_event(StageStarted)
    grandchild = await asyncio.to_thread(read_pid, child)
    await h.stop()
    assert not process_running(grandchild)


async def test_a_finished_stage_leaves_no_descendant_and_says_so(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "setsid_complete", child_pidfile=str(child))
    h = Harness(project.write(wf)).start()
    finished = await h.wait_event(StageFinished)
    assert finished.state == "completed", finished.reason
    grandchild = read_pid(child)
    assert not process_running(grandchild)  # killed before the outcome was decided
    notes = notices(records(Path(finished.session_file or "")))
    assert len(notes) == 1 and f"left running outside its group: pid {grandchild}" in notes[0]["detail"]
    await h.finish()


async def test_hook_timeout_kills_its_setsid_grandchild(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "hook-grandchild.pid"
    wf = chaos_workflow(project, "setsid_complete", child_pidfile=str(tmp_path / "unused.pid"))
    wf["loop"]["hook_timeout_sec"] = 1
    wf["issue"]["stages"]["plan"]["hooks"] = {
        "before_run": f"setsid sh -c 'echo $$ > {child}; exec sleep 3600' >/dev/null 2>&1 & sleep 3600"
    }
    h = Harness(project.write(wf)).start()
    hook = await h.wait_event(HookFinished, hook="before_run")
    assert hook.timed_out
    grandchild = read_pid(child)
    assert not process_running(grandchild)  # killed before the hook's result was reported
    await h.finish()


async def test_a_hooks_background_setsid_process_lives_until_the_stage_ends(project: Project, tmp_path: Path) -> None:
    """before_run may start a helper the agent uses (a dev server); it dies with the stage."""
    child = tmp_path / "server.pid"
    agent_child = tmp_path / "agent-grandchild.pid"
    wf = chaos_workflow(project, "setsid_hang", child_pidfile=str(agent_child))
    wf["issue"]["stages"]["plan"]["hooks"] = {
        "before_run": f"setsid sh -c 'echo $$ > {child}; exec sleep 3600' >/dev/null 2>&1 &"
    }
    h = Harness(project.write(wf)).start()
    await h.wait_event(StageStarted)
    server = read_pid(child)
    assert process_running(server)  # still there while the agent works
    h.supervisor.cancel("C-1", "plan")
    await h.wait_event(StageFinished)
    await _gone(h, server)
    await h.stop()


async def test_hook_whose_background_child_held_its_output_is_reported(project: Project) -> None:
    wf = chaos_workflow(project, "setsid_complete", child_pidfile="/dev/null")
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "sleep 3600 & echo started"}
    wf["agents"]["codex"]["args"]["--mode"] = "complete"
    h = Harness(project.write(wf)).start()
    hook = await h.wait_event(HookFinished, hook="before_run")
    assert hook.ok  # the script itself succeeded
    said = await h.wait_for(lambda: [e for e in h.named(Log) if "kept its output open" in e.message])
    assert said[0].level == "warning"
    await h.finish()


def test_marks_find_a_setsid_process_and_kill_it(tmp_path: Path) -> None:
    mark = descendants.Mark("sup", "scope", "run")
    pidfile = tmp_path / "pid"
    shell = subprocess.Popen(
        ["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 3600' >/dev/null 2>&1 &"],
        env=mark.env(),
    )
    shell.wait()
    escaped = read_pid(pidfile)
    assert descendants.find_marked([mark.scope_prefix]) == [escaped]
    assert descendants.find_marked(["other/"]) == []
    killed = asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2))
    assert killed == [escaped]
    assert not process_running(escaped)


def test_subreaper_adopts_and_reaps_orphans() -> None:
    if not descendants.set_subreaper(True):
        return  # not Linux: nothing to adopt with
    try:
        assert descendants.is_subreaper()
        # the shell exits at once; its background child becomes our orphan, then exits too
        shell = subprocess.run(["sh", "-c", "sleep 0.2 >/dev/null & echo $!"], check=True, capture_output=True)
        orphan = int(shell.stdout)
        reaper = descendants.Reaper()

        def reaped() -> bool:
            reaper.reap_once()
            return not Path(f"/proc/{orphan}").exists()

        wait_until(reaped, 20, "the orphan's zombie reaped")
    finally:
        descendants.set_subreaper(False)
    assert not descendants.is_subreaper()


async def test_the_reaper_passes_rarely_while_idle_and_still_reaps_an_orphan() -> None:
    """With nothing to reap its passes back off (a hundred agents' supervisor read its threads'
    children lists twice a second for nothing); an orphan that comes is reaped all the same,
    two passes after it was first seen."""
    if not descendants.set_subreaper(True):
        return  # not Linux: nothing to adopt with
    passes: list[float] = []

    class Counted(descendants.Reaper):
        def reap_once(self) -> int:
            passes.append(asyncio.get_running_loop().time())
            return super().reap_once()

    task: asyncio.Future[None] | None = None
    try:
        task = asyncio.ensure_future(Counted(interval_sec=0.02, idle_max_sec=0.3).run())
        await asyncio.sleep(1.0)
        # 0.02, 0.04, 0.08, 0.16, then 0.3 s apart: a handful of passes, not fifty
        assert 4 <= len(passes) <= 9, passes
        shell = subprocess.run(["sh", "-c", "sleep 0.1 >/dev/null & echo $!"], check=True, capture_output=True)
        orphan = int(shell.stdout)
        for _ in range(200):
            if not Path(f"/proc/{orphan}").exists():
                break
            await asyncio.sleep(0.05)
        assert not Path(f"/proc/{orphan}").exists(), "the orphan's zombie was not reaped"
    finally:
        if task is not None:
            task.cancel()
        descendants.set_subreaper(False)


def _escaped(mark: descendants.Mark, pidfile: Path) -> int:
    """A marked `setsid` grandchild whose shell has exited: an orphan, re-parented."""
    shell = subprocess.Popen(
        ["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 3600' >/dev/null 2>&1 &"],
        env=mark.env(),
    )
    shell.wait()
    return read_pid(pidfile)


def test_our_marks_are_looked_for_below_us_while_we_are_a_subreaper(tmp_path: Path) -> None:
    mark = descendants.Mark("sup-below", "scope", "run")
    outside = _escaped(mark, tmp_path / "outside")  # not a subreaper yet: adopted above us
    if not descendants.set_subreaper(True):
        asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2))
        return  # not Linux: nothing to adopt with
    try:
        adopted = _escaped(mark, tmp_path / "adopted")  # re-parented to us
        assert descendants.find_marked([mark.scope_prefix], ours=True) == [adopted]
        assert sorted(descendants.find_marked([mark.scope_prefix])) == sorted([adopted, outside])
        assert asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2, ours=True)) == [adopted]
        assert not process_running(adopted)
    finally:
        descendants.set_subreaper(False)
        asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2))
    assert not process_running(outside)


def test_children_apart_are_not_looked_into(tmp_path: Path) -> None:
    """`apart`: another scope's live child and everything below it are not read (at a session's
    end, the other sessions' agents); what the ending scope left beside them is still found."""
    mark = descendants.Mark("sup-apart", "scope", "run")
    if not descendants.set_subreaper(True):
        return  # not Linux: nothing to adopt with
    other = None
    try:
        adopted = _escaped(mark, tmp_path / "adopted")  # the scope's leftover, re-parented to us
        # another scope's child whose own child carries the mark (a stand-in: a real one never
        # could, which is why it may be left apart)
        other = subprocess.Popen(["sh", "-c", "sleep 3600 & wait"], env=mark.env())
        below = wait_until(lambda: _child_of(other.pid), 20, "the other scope's child started")
        assert sorted(descendants.find_marked([mark.scope_prefix], ours=True)) == sorted([adopted, other.pid, below])
        assert descendants.find_marked([mark.scope_prefix], ours=True, apart={other.pid}) == [adopted]
        killed = asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2, ours=True, apart={other.pid}))
        assert killed == [adopted] and not process_running(adopted)
        assert process_running(other.pid) and process_running(below)
    finally:
        if other is not None:
            other.kill()
            other.wait()
        descendants.set_subreaper(False)
        asyncio.run(descendants.kill_marked([mark.scope_prefix], grace_sec=2))


def _child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None
