"""Issue #18, item 12: an `env -i setsid` grandchild (no group, no session, no mark) does not
outlive its stage: where cgroup v2 is writable each stage runs in its own cgroup, and
`cgroup.kill` ends whatever is left in it. Where it is not, marks are all there is (README)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from chaos_helpers import HeadlessProcess, chaos_workflow, last_outcome, read_pid, records, wait_until
from conftest import Project, process_running

from vik_tui.engine.processes.cgroups import Cgroups, StageCgroup
from vik_tui.engine.processes.descendants import MARK_VAR


def _writable_cgroups() -> bool:
    """A cgroup v2 tree this process may create cgroups in (checked by making one)."""
    for mount in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if not (mount / "cgroup.controllers").exists():
            continue
        probe = mount / f"vik-tui-probe-{os.urandom(4).hex()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        probe.rmdir()
        return True
    return False


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_an_env_i_setsid_grandchild_dies_with_its_stage(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "envi_complete", child_pidfile=str(child))
    wf["loop"]["max_iterations"] = None
    sup = HeadlessProcess(project.write(wf))
    try:
        finished = sup.wait_event("stage_finished", timeout=60)
        grandchild = read_pid(child)
        with contextlib.suppress(OSError):  # it may be gone already
            assert MARK_VAR.encode() not in Path(f"/proc/{grandchild}/environ").read_bytes()  # no mark to find it by
        wait_until(lambda: not process_running(grandchild), 20, "the grandchild to be killed")
        assert finished["state"] == "completed", finished
        path = Path(finished["session_file"])
        assert f"pid {grandchild}" in path.read_text(), records(path)  # the session file says so
        assert last_outcome(path)["state"] == "completed"
    finally:
        sup.signal(15)
        assert sup.wait() == 0, sup.stderr()
    leftover = subprocess.run(
        ["sh", "-c", "ls -d /sys/fs/cgroup/unified/vik-tui-* /sys/fs/cgroup/vik-tui-* 2>/dev/null"],
        capture_output=True,
        text=True,
    )
    mine = [line for line in leftover.stdout.split() if "probe-" not in line]
    assert not any(Path(p).exists() and (Path(p) / "cgroup.procs").read_text().strip() for p in mine)


def _escapee(pidfile: Path) -> str:
    """Shell that starts an `env -i setsid` grandchild (no group, no session, no mark), writes
    its pid, and goes on (the caller then hangs)."""
    inner = f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 3600"
    return f"env -i /usr/bin/setsid /bin/sh -c '{inner}' >/dev/null 2>&1 < /dev/null & "


def _reap(pid: int | None) -> None:
    """Nothing is left behind, whatever the test found."""
    if pid is not None and process_running(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def _hanging_hook(project: Project, child: Path, hook_timeout_sec: float) -> HeadlessProcess:
    """A supervisor whose plan's before_run hook leaves an `env -i setsid` grandchild (its pid
    in `child`) and then hangs."""
    wf = chaos_workflow(project, "complete")
    wf["loop"]["hook_timeout_sec"] = hook_timeout_sec
    wf["loop"]["max_iterations"] = None
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": _escapee(child) + "sleep 3600"}
    return HeadlessProcess(project.write(wf))


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_a_hooks_env_i_setsid_grandchild_dies_when_the_hook_times_out(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    sup = _hanging_hook(project, child, hook_timeout_sec=2)
    grandchild = None
    try:
        grandchild = read_pid(child)
        hook = sup.wait_event("hook_finished", timeout=60)
        assert hook["timed_out"] and not hook["ok"], hook
        wait_until(lambda: not process_running(grandchild), 20, "the hook's grandchild to be killed")
    finally:
        sup.signal(15)
        assert sup.wait() == 0, sup.stderr()
        _reap(grandchild)


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_a_pulls_env_i_setsid_grandchild_dies_when_sigterm_ends_the_pull(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "complete")
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["command"] = _escapee(child) + "sleep 3600"
    sup = HeadlessProcess(project.write(wf))
    grandchild = None
    try:
        grandchild = read_pid(child)
        sup.signal(15)
        assert sup.wait() == 0, sup.stderr()
        wait_until(lambda: not process_running(grandchild), 20, "the pull's grandchild to be killed")
    finally:
        if sup.proc.returncode is None:
            sup.kill()
        _reap(grandchild)


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_an_orphan_a_hook_left_without_its_mark_dies_when_the_stage_ends(project: Project, tmp_path: Path) -> None:
    """The hook exits at once; its `env -i setsid` grandchild, adopted by the supervisor (a
    subreaper), lives on through the stage, as a hook's background process may, and dies with it."""
    child = tmp_path / "grandchild.pid"
    wf = chaos_workflow(project, "talk", seconds=1)
    wf["loop"]["max_iterations"] = None
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": _escapee(child) + "true"}
    sup = HeadlessProcess(project.write(wf))
    grandchild = None
    try:
        grandchild = read_pid(child)
        finished = sup.wait_event("stage_finished", timeout=60)
        assert finished["state"] == "completed", finished
        said = f"killed 1 process(es) left running by C-1/plan: pid {grandchild}"
        wait_until(lambda: any(said in e["message"] for e in sup.named("log")), 20, "the log to say it killed it")
        wait_until(lambda: not process_running(grandchild), 20, "the hook's orphan to be killed")
    finally:
        sup.signal(15)
        assert sup.wait() == 0, sup.stderr()
        _reap(grandchild)


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_a_hooks_env_i_setsid_grandchild_dies_when_sigterm_stops_the_hook(project: Project, tmp_path: Path) -> None:
    child = tmp_path / "grandchild.pid"
    sup = _hanging_hook(project, child, hook_timeout_sec=600)
    grandchild = None
    try:
        grandchild = read_pid(child)
        sup.signal(15)
        assert sup.wait() == 0, sup.stderr()
        wait_until(lambda: not process_running(grandchild), 20, "the hook's grandchild to be killed")
    finally:
        if sup.proc.returncode is None:
            sup.kill()
        _reap(grandchild)


def _stage_cgroup(tmp_path: Path) -> tuple[Cgroups, StageCgroup]:
    groups = Cgroups.open(f"test-{os.urandom(4).hex()}")
    assert groups is not None
    stage = groups.stage("stage")
    assert stage is not None
    return groups, stage


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_an_agent_joins_its_cgroup_before_it_runs_without_a_preexec_hook(tmp_path: Path) -> None:
    """The program is exec'd in the cgroup with its own pid and arguments (so it and all it
    starts are in it from its first instruction), found on the child's PATH."""
    groups, stage = _stage_cgroup(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    agent = bin_dir / "agent"
    agent.write_text('#!/bin/sh\necho "$$ $*"; cat /proc/self/cgroup; exec sleep 30\n')
    agent.chmod(0o755)
    proc = subprocess.Popen(
        stage.command(["agent", "a b", "c"], {"PATH": f"/nonexistent:{bin_dir}"}, tmp_path),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"{proc.pid} a b c"  # same pid: exec, not a child
        v2 = next(line for line in iter(proc.stdout.readline, "") if line.startswith("0::"))
        assert v2.strip().endswith(f"{groups.directory.name}/stage")
        # (`cat`, its child, may still be there a moment)
        wait_until(lambda: stage.pids() == [proc.pid], 20, "the agent alone in its cgroup")
    finally:
        proc.kill()
        proc.wait()
        groups.close()


@pytest.mark.skipif(not _writable_cgroups(), reason="cgroup v2 is not writable here (root or a delegated slice)")
def test_a_missing_or_unrunnable_agent_fails_as_before_in_a_cgroup(tmp_path: Path) -> None:
    groups, stage = _stage_cgroup(tmp_path)
    try:
        plain = tmp_path / "plain"
        plain.write_text("not a program\n")
        with pytest.raises(FileNotFoundError):
            stage.command(["definitely-not-installed-agent"], {"PATH": str(tmp_path)}, tmp_path)
        with pytest.raises(FileNotFoundError):
            stage.command(["./nothing-here"], None, tmp_path)
        with pytest.raises(PermissionError):
            stage.command(["plain"], {"PATH": str(tmp_path)}, tmp_path)
        with pytest.raises(PermissionError):
            stage.command([str(plain)], {"PATH": ""}, tmp_path)
    finally:
        groups.close()
