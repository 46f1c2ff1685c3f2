"""Children are waited for with pidfds in the loop (Python 3.11), not with a thread each, from
any thread's loop, and their exit codes and signals come through as before."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import warnings

import pytest

from vik_tui.engine.processes.watcher import PidfdWatcher, use_pidfd_watcher

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 picks a pidfd watcher itself")


@pytest.fixture
def pidfd_watcher() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        before = asyncio.get_child_watcher()
        assert use_pidfd_watcher()
        assert isinstance(asyncio.get_child_watcher(), PidfdWatcher)
        yield
        asyncio.set_child_watcher(before)


async def _run_children() -> tuple[list[int | None], int]:
    threads = threading.active_count()
    watcher = asyncio.get_child_watcher()
    assert isinstance(watcher, PidfdWatcher)
    procs = [
        await asyncio.create_subprocess_exec("sh", "-c", f"sleep 0.2; exit {code}", start_new_session=True)
        for code in (0, 3, 7)
    ]
    killed = await asyncio.create_subprocess_exec("sleep", "30")
    running_threads = threading.active_count() - threads
    assert {proc.pid for proc in procs} | {killed.pid} <= watcher.watched  # the reaper leaves them be
    killed.send_signal(signal.SIGTERM)
    codes: list[int | None] = [await proc.wait() for proc in procs]
    codes.append(await killed.wait())
    assert not watcher.watched & ({proc.pid for proc in procs} | {killed.pid})
    return codes, running_threads


def test_children_are_waited_for_without_a_thread_each(pidfd_watcher: object) -> None:
    codes, extra_threads = asyncio.run(_run_children())
    assert codes == [0, 3, 7, -signal.SIGTERM]
    assert extra_threads == 0  # ThreadedChildWatcher: one per running child


def test_a_loop_in_another_thread_waits_for_its_own_children(pidfd_watcher: object) -> None:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(_run_children())))
    thread.start()
    thread.join(timeout=30)
    assert result and result[0] == ([0, 3, 7, -signal.SIGTERM], 0)
