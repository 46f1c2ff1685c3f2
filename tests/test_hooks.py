"""Hooks: `sh -c` in the workspace, bounded; on timeout the whole process group dies."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import time
from pathlib import Path

import psutil
import pytest

from vik_tui.engine.stages.hooks import TAIL_CHARS, HookResult, run_hook


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (it runs nothing)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "issues" / "ENG-1"
    path.mkdir(parents=True)
    return path


async def test_runs_with_sh_in_the_workspace(workdir: Path) -> None:
    result = await run_hook("after_create", 'pwd; echo made > created.txt; [ -n "$0" ] && echo sh', workdir, 60)
    assert result.ok and result.exit_code == 0 and not result.timed_out and result.error is None
    assert result.stdout_tail == f"{workdir}\nsh\n"
    assert (workdir / "created.txt").read_text() == "made\n"
    assert result.summary == "hook after_create succeeded"


async def test_stdin_is_closed(workdir: Path) -> None:
    result = await run_hook("before_run", "cat; echo done", workdir, 60)  # would hang on an inherited stdin
    assert result.ok and result.stdout_tail == "done\n"


async def test_failure_keeps_tails_and_names_the_exit_code(workdir: Path) -> None:
    script = "echo out-line; echo 'first problem' >&2; echo 'tests failed: 3' >&2; exit 3"
    result = await run_hook("before_run", script, workdir, 60)
    assert not result.ok and result.exit_code == 3 and not result.timed_out
    assert result.stdout_tail == "out-line\n"
    assert result.stderr_tail == "first problem\ntests failed: 3\n"
    assert result.summary == "hook before_run exited with code 3: tests failed: 3"


async def test_failure_without_stderr(workdir: Path) -> None:
    result = await run_hook("after_run", "exit 1", workdir, 60)
    assert result.summary == "hook after_run exited with code 1"


async def test_killed_by_a_signal_is_described(workdir: Path) -> None:
    result = await run_hook("before_run", "kill -TERM $$", workdir, 60)
    assert result.exit_code == -15 and result.summary == "hook before_run was killed by signal 15 (SIGTERM)"


async def test_tails_are_bounded(workdir: Path) -> None:
    script = 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done'
    result = await run_hook("after_create", script, workdir, 30)
    assert result.ok
    assert len(result.stdout_tail) <= TAIL_CHARS and result.stdout_tail.endswith("line 2999\n")
    assert len(result.stderr_tail) <= TAIL_CHARS and result.stderr_tail.endswith("err 2999\n")


async def test_binary_output_does_not_break_anything(workdir: Path) -> None:
    result = await run_hook("after_create", "printf '\\377\\376ok'", workdir, 60)
    assert result.ok and result.stdout_tail.endswith("ok")


async def test_timeout_kills_every_child(workdir: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    q = shlex.quote(str(pids))
    script = (
        f"sleep 1000 & echo $! >> {q}; sleep 1000 & echo $! >> {q}; "
        f"sh -c 'sleep 1000 & echo $! >> {q}; wait' & echo $! >> {q}; echo started; wait"
    )
    started = time.monotonic()
    # 2 s: the script's setup (three children, their pids written) must happen before the timeout, even under load
    result = await run_hook("before_run", script, workdir, timeout_sec=2, grace_sec=0.5)
    assert time.monotonic() - started < 30  # bounded: nowhere near `sleep 1000`
    assert not result.ok and result.timed_out
    assert result.error == "timed out after 2s (process group killed)"
    assert result.summary == "hook before_run failed: timed out after 2s (process group killed)"
    assert result.stdout_tail == "started\n"  # output before the kill is kept
    children = read_pids(pids)
    assert len(children) >= 3
    assert all(dead(pid) for pid in children), [(p, dead(p)) for p in children]


async def test_timeout_kills_children_that_ignore_sigterm(workdir: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"trap '' TERM; (trap '' TERM; sleep 1000) & echo $! > {shlex.quote(str(pids))}; wait"
    result = await run_hook("before_run", script, workdir, timeout_sec=2, grace_sec=0.3)  # 2 s: setup first
    assert result.timed_out
    assert all(dead(pid) for pid in read_pids(pids))


async def test_background_child_holding_output_is_killed_after_the_script_exits(workdir: Path, tmp_path: Path) -> None:
    """`sleep 1000 &` keeps the hook's stdout open; the hook still ends when its script does."""
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {shlex.quote(str(pids))}; echo ready"
    started = time.monotonic()
    result = await run_hook("after_create", script, workdir, timeout_sec=120)
    assert time.monotonic() - started < 60  # nowhere near the 120 s timeout
    assert result.ok and not result.timed_out and result.stdout_tail == "ready\n"
    assert all(dead(pid) for pid in read_pids(pids))


async def test_detached_background_child_is_left_alone(workdir: Path, tmp_path: Path) -> None:
    """A hook may start a helper that does not hold its output (e.g. a dev server)."""
    pids = tmp_path / "pids"
    script = f"sleep 1000 >/dev/null 2>&1 & echo $! > {shlex.quote(str(pids))}"
    result = await run_hook("before_run", script, workdir, timeout_sec=30)
    try:
        assert result.ok
        (pid,) = read_pids(pids)
        assert not dead(pid)
    finally:
        for pid in read_pids(pids):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def wait_for_pids(path: Path, timeout: float = 30.0) -> list[int]:
    """Block until the script wrote its pid file (a generous ceiling for a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.01)  # polling for a condition
    return read_pids(path)


def kill_pids(path: Path) -> None:
    """Clean-up for a failed assertion: the test's own children never outlive it."""
    for pid in read_pids(path) if path.exists() else []:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


async def test_cancelling_a_hook_kills_its_group(workdir: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {shlex.quote(str(pids))}; wait"
    task = asyncio.create_task(run_hook("before_run", script, workdir, timeout_sec=60, grace_sec=0.5))
    try:
        deadline = time.monotonic() + 30
        while not (pids.exists() and pids.read_text().endswith("\n")):  # wait for the condition, not a fixed time
            assert time.monotonic() < deadline, "hook never started"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(dead(pid) for pid in read_pids(pids))
    finally:
        task.cancel()
        kill_pids(pids)


async def test_cancelling_a_hook_while_it_is_being_spawned_kills_its_group(workdir: Path, tmp_path: Path) -> None:
    """Cancelled before asyncio finished connecting the pipes (what a loaded machine does to the test
    above): asyncio alone would SIGKILL only `sh` and leave its child running."""
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {shlex.quote(str(pids))}; wait"
    task = asyncio.create_task(run_hook("before_run", script, workdir, timeout_sec=60, grace_sec=0.5))
    try:
        for _ in range(1000):  # one loop step at a time, until the task forked `sh` (pipes not yet connected)
            await asyncio.sleep(0)
            if any(str(pids) in " ".join(child.cmdline()) for child in psutil.Process().children()):
                break
        else:
            raise AssertionError("the hook never forked its shell")
        wait_for_pids(pids)  # blocking on purpose: the event loop cannot connect the pipes meanwhile
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(dead(pid) for pid in read_pids(pids))
    finally:
        task.cancel()
        kill_pids(pids)


async def test_missing_workspace_is_a_clear_failure(tmp_path: Path) -> None:
    result = await run_hook("after_create", "true", tmp_path / "nope", 60)
    assert not result.ok and result.exit_code is None
    assert result.summary.startswith("hook after_create failed: could not start")
    assert str(tmp_path / "nope") in result.summary


def test_summary_of_a_constructed_result() -> None:
    assert HookResult("h", False, 2, "", "a\nb\n").summary == "hook h exited with code 2: b"


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid(1)")
@pytest.mark.parametrize("timeout_sec", [2, 120], ids=["script-hangs", "script-exits"])
async def test_a_child_that_left_the_group_cannot_hang_the_hook(
    workdir: Path, tmp_path: Path, timeout_sec: float
) -> None:
    """`setsid` puts a child out of reach of the group kill; it must not keep us waiting on its pipe."""
    pids = tmp_path / "pids"
    hangs = timeout_sec < 60  # 2 s: long enough for `echo before` to come first, even under load
    tail_cmd = "sleep 1000" if hangs else "true"
    script = f"echo before; setsid sh -c 'echo $$ > {shlex.quote(str(pids))}; exec sleep 1000' & {tail_cmd}"
    started = time.monotonic()
    try:
        result = await run_hook("before_run", script, workdir, timeout_sec=timeout_sec, grace_sec=0.3)
        assert time.monotonic() - started < 60  # not `sleep 1000`, nor the 120 s timeout
        assert result.stdout_tail == "before\n"  # what was read before giving up is kept
        assert result.timed_out == hangs
    finally:
        deadline = time.monotonic() + 30
        while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for pid in read_pids(pids):  # we started it: clean it up
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
