"""Hot reload's watching half: which files make up the configuration (the workflow file and
every stage's prompt file) and a watcher that calls back when one of them is saved. What a new
configuration means for the runs is the Supervisor's (`Supervisor.reload`); `load_checked`
reads the files and says what is wrong with them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.paths import Layout, resolve_from


def load_checked(
    workflow_path: Path, root: Path, emit: Callable[[ee.EngineEvent], None], log: Callable[[ee.Level, str], None]
) -> LoadResult:
    """The files on disk loaded and validated; a rejected configuration is said (each error,
    then `config_rejected`), and so is a workspace root that would move (applies after a restart)."""
    result = load_workflow(workflow_path)
    if not result.ok or result.workflow is None:
        for diag in result.errors:
            log("error", f"config reload rejected: {diag.render(workflow_path.name)}")
        emit(ee.ConfigRejected(errors=tuple(result.errors)))
        return result
    if Layout.for_workflow(result.workflow, workflow_path).root != root:
        log("warning", "workspace location changed; it applies after a restart")
    return result


def watched_paths(workflow: Workflow, workflow_path: Path, workflow_dir: Path) -> list[Path]:
    paths = {workflow_path}
    for stage in workflow.issue.stages.values():
        if stage.prompt_file:
            paths.add(resolve_from(workflow_dir, stage.prompt_file))
    return sorted(paths)


async def watch(
    paths: Callable[[], list[Path]],
    on_change: Callable[[], object],
    stop_event: asyncio.Event,
    stopping: Callable[[], bool],
    log: Callable[[ee.Level, str], None],
    armed: Callable[[], object] = lambda: None,
) -> None:
    """Call `on_change` after each save of one of `paths()` (asked again after every change:
    the set of prompt files may have changed), until `stop_event`. A watcher failure is logged
    and ends the watching, never the engine.

    The watching runs in a daemon thread (watchfiles' blocking `watch`, its Rust notifier under
    it), which also imports watchfiles: neither holds the loop while the first pull and agents
    start, leaving needs no join, and anyio's event-loop backend (`awatch`'s, which imports
    `ssl`: `cli.lean`) is never loaded. `armed` is called (in the loop) once the files are
    watched, the first time and after each rebuild."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.ensure_future(stop_event.wait())
    halt = _Halt(loop, armed)
    try:
        while not stopping():
            targets = frozenset(str(p) for p in paths())
            dirs = sorted({str(Path(p).parent) for p in targets if Path(p).parent.exists()})
            changed: asyncio.Future[bool] = loop.create_future()
            halt = _Halt(loop, armed)
            threading.Thread(
                target=_first_change, args=(dirs, targets, halt, loop, changed), name="config watcher", daemon=True
            ).start()
            await asyncio.wait((changed, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not changed.done():
                return
            try:
                if not changed.result():
                    return
            except Exception as exc:  # never let the watcher take the supervisor down
                log("warning", f"config watcher stopped: {exc}")
                return
            on_change()  # then rebuild the watch: the set of prompt files may have changed
    finally:
        halt.set()
        stopped.cancel()


class _Halt(threading.Event):
    """The watcher thread's `stop_event`, set to stop it (watchfiles asks every `step` ms). It
    is first asked from inside watchfiles' Rust watch, so once the files are watched: that first
    ask calls `armed` in the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, armed: Callable[[], object]) -> None:
        super().__init__()
        self._loop: asyncio.AbstractEventLoop | None = loop
        self._armed = armed

    def is_set(self) -> bool:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(self._armed)
        return super().is_set()


def _first_change(
    dirs: list[str],
    targets: frozenset[str],
    halt: _Halt,
    loop: asyncio.AbstractEventLoop,
    changed: asyncio.Future[bool],
) -> None:
    """In the watcher's thread: wait for the first save of one of `targets` (True) or for `halt`
    (False), and hand the answer (or the failure) to the loop."""
    outcome: tuple[Callable[[Any], None], Any]
    try:
        import watchfiles

        found = False
        for _changes in watchfiles.watch(
            *dirs,
            watch_filter=lambda _change, path: path in targets,
            recursive=False,
            stop_event=halt,
            debounce=200,
            # how often the Rust watch takes the GIL to ask `halt` (and yields a save once quiet
            # this long): 5 times a second, not 20, beside a loop that sleeps between ticks
            step=200,
            raise_interrupt=False,
        ):
            found = True
            break
        outcome = (changed.set_result, found)
    except Exception as exc:
        outcome = (changed.set_exception, exc)
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, changed, *outcome)


def _settle(future: asyncio.Future[bool], settle: Callable[[Any], None], value: Any) -> None:
    if not future.done():
        settle(value)
