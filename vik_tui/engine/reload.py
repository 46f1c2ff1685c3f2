"""Hot reload's watching half: which files make up the configuration (the workflow file and
every stage's prompt file) and a watcher that calls back when one of them is saved. What a new
configuration means for the runs is the Supervisor's (`Supervisor.reload`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.paths import resolve_from


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
) -> None:
    """Call `on_change` after each save of one of `paths()` (asked again after every change:
    the set of prompt files may have changed), until `stop_event`. A watcher failure is logged
    and ends the watching, never the engine."""
    import watchfiles

    while not stopping():
        targets = {str(p) for p in paths()}
        dirs = sorted({str(Path(p).parent) for p in targets if Path(p).parent.exists()})
        try:
            async for _changes in watchfiles.awatch(
                *dirs,
                watch_filter=lambda _c, path: path in targets,  # noqa: B023 - used only inside this iteration
                recursive=False,
                stop_event=stop_event,
                debounce=200,
                step=50,
            ):
                on_change()
                break  # the set of prompt files may have changed: rebuild the watch
        except Exception as exc:  # never let the watcher take the supervisor down
            log("warning", f"config watcher stopped: {exc}")
            return
