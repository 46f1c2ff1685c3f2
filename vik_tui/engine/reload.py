"""Hot reload's watching half: which files make up the configuration (the workflow file and
every stage's prompt file) and a watcher that calls back when one of them is saved. What a new
configuration means for the runs is the Supervisor's (`Supervisor.reload`); `load_checked`
reads the files and says what is wrong with them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.inotify import Inotify, saved
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

    The directories of the files are watched with inotify from the loop (`engine.inotify`): no
    thread, nothing imported, no wake-up while nothing changes. `armed` is called once the files
    are watched, the first time and after each rebuild."""
    stopped = asyncio.ensure_future(stop_event.wait())
    try:
        while not stopping():
            targets = frozenset(str(p) for p in paths())
            dirs = sorted({str(Path(p).parent) for p in targets if Path(p).parent.exists()})
            try:
                with Inotify(dirs) as notify:
                    armed()
                    if not await saved(notify, targets, stopped):
                        return
            except Exception as exc:  # never let the watcher take the supervisor down
                log("warning", f"config watcher stopped: {exc}")
                return
            on_change()  # then rebuild the watch: the set of prompt files may have changed
    finally:
        stopped.cancel()
