"""Hot reload's watching (`engine/inotify.py`, `engine/reload.watch`): real files in a real
directory, saved the ways editors save them; a burst of writes is one change; other files in
the directory are not news; a stop ends the wait; nothing is left registered or open."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vik_tui.engine import reload
from vik_tui.engine.inotify import Inotify, saved

SAVES: dict[str, Callable[[Path], None]] = {
    "written in place": lambda path: path.write_text("loop: {}\n"),
    "renamed over it (an editor's atomic save)": lambda path: (
        (path.parent / ".wf.tmp").write_text("loop: {}\n"),
        os.replace(path.parent / ".wf.tmp", path),
    ),
    "touched": lambda path: os.utime(path),
    "deleted": lambda path: path.unlink(),
    "created": lambda path: (path.unlink(), path.write_text("new\n")),
}


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def change_soon(action: Callable[[], object], delay: float = 0.05) -> None:
    await asyncio.sleep(delay)
    action()


@pytest.mark.parametrize("how", list(SAVES))
async def test_a_save_is_seen_however_it_is_made(tmp_path: Path, how: str) -> None:
    target = tmp_path / "workflow.yml"
    target.write_text("old\n")
    stop = asyncio.get_running_loop().create_future()
    with Inotify([str(tmp_path)]) as notify:
        saving = asyncio.ensure_future(change_soon(lambda: SAVES[how](target)))
        assert await asyncio.wait_for(saved(notify, {str(target)}, stop), 10) is True
        await saving


async def test_other_files_in_the_directory_are_not_news(tmp_path: Path) -> None:
    target = tmp_path / "workflow.yml"
    target.write_text("old\n")
    stop = asyncio.get_running_loop().create_future()
    with Inotify([str(tmp_path)]) as notify:
        waiting = asyncio.ensure_future(saved(notify, {str(target)}, stop))
        for i in range(20):
            (tmp_path / f"other-{i}.txt").write_text("x")
            (tmp_path / f"other-{i}.txt").unlink()
        await asyncio.sleep(0.3)
        assert not waiting.done()
        target.write_text("new\n")
        assert await asyncio.wait_for(waiting, 10) is True


async def test_a_burst_of_writes_is_one_change_once_it_is_over(tmp_path: Path) -> None:
    """Writes 10 ms apart: the wait ends `step` after the last of them, or `debounce` after the
    first, not at the first (the file would be read half written)."""
    target = tmp_path / "workflow.yml"
    target.write_text("")
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    written: list[float] = []

    async def burst(count: int) -> None:
        await asyncio.sleep(0.05)
        with open(target, "a") as handle:
            for _ in range(count):
                handle.write("line\n")
                handle.flush()
                written.append(loop.time())
                await asyncio.sleep(0.01)

    with Inotify([str(tmp_path)]) as notify:
        writer = asyncio.ensure_future(burst(5))  # 50 ms of writes: shorter than `debounce`
        assert await asyncio.wait_for(saved(notify, {str(target)}, stop, debounce=1.0, step=0.1), 10)
        assert loop.time() >= written[-1] + 0.1 - 0.02 and len(written) == 5
        await writer
        written.clear()
        writer = asyncio.ensure_future(burst(100))  # a second of writes: `debounce` cuts it
        began = loop.time()
        assert await asyncio.wait_for(saved(notify, {str(target)}, stop, debounce=0.3, step=0.1), 10)
        assert loop.time() - began < 0.9 and not writer.done()
        await writer


async def test_a_stop_ends_the_wait_and_nothing_is_left_open(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    before = fds()
    stop = loop.create_future()
    with Inotify([str(tmp_path)]) as notify:
        waiting = asyncio.ensure_future(saved(notify, {str(tmp_path / "workflow.yml")}, stop))
        await asyncio.sleep(0.05)
        stop.set_result(None)
        assert await asyncio.wait_for(waiting, 10) is False
        assert not loop.remove_reader(notify.fd)  # no reader left registered
        cancelled = asyncio.ensure_future(saved(notify, {str(tmp_path / "workflow.yml")}, loop.create_future()))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert not loop.remove_reader(notify.fd)  # no reader left registered
    assert fds() == before


def test_a_directory_that_cannot_be_watched_is_an_oserror(tmp_path: Path) -> None:
    before = fds()
    with pytest.raises(OSError, match="No such file"):
        Inotify([str(tmp_path), str(tmp_path / "gone")])
    assert fds() == before  # the descriptor of the half-made watch is closed


async def test_watch_reloads_after_each_save_and_follows_a_new_prompt_file(tmp_path: Path) -> None:
    """`reload.watch`: `on_change` once per save, the paths asked again after each (a prompt
    file added by the last change is watched from then on), `armed` each time, and a stop ends it."""
    workflow, prompts = tmp_path / "workflow.yml", tmp_path / "prompts"
    prompts.mkdir()
    prompt = prompts / "plan.md"
    workflow.write_text("v0\n")
    watched = [workflow]
    changes: list[str] = []
    armed = asyncio.Queue[None]()
    stop = asyncio.Event()
    logged: list[str] = []

    def on_change() -> None:
        changes.append(workflow.read_text())
        watched[:] = [workflow, prompt]  # the new configuration names a prompt file

    task = asyncio.ensure_future(
        reload.watch(
            lambda: list(watched),
            on_change,
            stop,
            stop.is_set,
            lambda _l, m: logged.append(m),
            lambda: armed.put_nowait(None),
        )
    )
    await asyncio.wait_for(armed.get(), 10)
    workflow.write_text("v1\n")
    await asyncio.wait_for(armed.get(), 10)  # re-armed after the change
    assert changes == ["v1\n"]
    prompt.write_text("do it\n")  # in another directory, watched since the rebuild
    await asyncio.wait_for(armed.get(), 10)
    assert len(changes) == 2
    stop.set()
    await asyncio.wait_for(task, 10)
    assert logged == []
