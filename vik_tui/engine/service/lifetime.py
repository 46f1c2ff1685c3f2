"""One supervisor's hold on this machine for the length of one `run()`: the workflow's lock,
`state.json` (what `status`, `stop` and `attach` read), being the subreaper of every process it
starts (with a reaper for the orphans that reach it), and the crash-recovery sweep of what a
supervisor killed with SIGKILL left behind.

It exists so `Supervisor.run()` reads as its sequence (take the place, recover, loop, let go)
rather than as the system calls each step needs. It never touches a `StageRun`'s status.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.clock import now_iso
from vik_tui.engine.processes.descendants import Reaper, set_subreaper
from vik_tui.engine.processes.watcher import use_pidfd_watcher
from vik_tui.engine.service import daemon
from vik_tui.engine.service.atomic import remove_service_temp_files
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.service.recovery import RecoveryReport, Registry, mark_interrupted
from vik_tui.engine.service.state import WorkflowLock
from vik_tui.engine.stages.runs import StageRun


class Lifetime:
    """`lock` None: a supervisor that shares the workflow (tests, benchmarks): no lock, no sweep."""

    def __init__(
        self,
        layout: Layout,
        lock: WorkflowLock | None,
        registry: Registry,
        supervisor_id: str,
        log: Callable[[ee.Level, str], None],
    ) -> None:
        self._layout, self._lock, self._registry, self._id, self._log = layout, lock, registry, supervisor_id, log
        self._subreaper = False
        self._reaper: Reaper | None = None
        self._reaping: asyncio.Future[None] | None = None

    @staticmethod
    def lock_for(workflow: Workflow, workflow_path: Path) -> WorkflowLock:
        """Keyed on the real path: the same workflow reached through a symlink is the same workflow."""
        return WorkflowLock(Layout.for_workflow(workflow, Path(os.path.realpath(workflow_path))).lock_file)

    def begin(self, workflow_path: Path, command: str, port: int, bind_address: str) -> None:
        """Take the lock (raises AlreadyRunning), remove the temp files of atomic writes a kill -9
        interrupted, and write state.json."""
        holder = {"pid": os.getpid(), "started_at": now_iso(), "cwd": os.getcwd(), "workflow": str(workflow_path)}
        if self._lock is not None:
            self._lock.acquire(holder)  # raises AlreadyRunning
        self._layout.root.mkdir(parents=True, exist_ok=True)
        if self._lock is not None:  # ours alone now: what a kill -9 mid atomic write left
            remove_service_temp_files(self._layout.service_dir)
        state = daemon.ServiceState.for_supervisor(self._layout, command, port, bind_address)
        daemon.write_state(self._layout.state_file, state)

    def start_reaping(self) -> None:
        watcher = use_pidfd_watcher()  # one pidfd per agent in the loop, not a waiting thread each
        self._subreaper = set_subreaper(True)
        self._reaper = Reaper(waited=watcher.watched if watcher is not None else ()) if self._subreaper else None
        self._reaping = asyncio.ensure_future(self._reaper.run()) if self._reaper else None

    def stop_reaping(self) -> None:
        if self._reaping is not None and self._reaper is not None:
            self._reaping.cancel()
            self._reaper.reap_once()
        if self._subreaper:
            set_subreaper(False)

    def end(self) -> None:
        """Remove state.json (vik removes it at a clean exit) and let the lock go."""
        daemon.remove_state(self._layout.state_file, os.getpid())
        if self._lock is not None:
            self._lock.release()

    async def recover(self, control_dir: str | None, grace: float, runs: Iterable[StageRun]) -> RecoveryReport | None:
        """Before any dispatch: sweep what a killed supervisor left (`recovery`), and mark the
        sessions the UI already loaded from disk as interrupted."""
        if self._lock is None:
            return None  # without the lock another supervisor may be running these stages
        report = None
        try:
            report = await self._registry.sweep(grace)
            self._registry.supervisor_started(self._id, control_dir)
        except OSError as exc:
            self._log("error", f"crash recovery could not use {self._registry.directory}: {describe_os_error(exc)}")
            return report
        if report.anything:
            self._log("warning" if not report.unwritable else "error", report.describe())
            mark_interrupted(runs, report)
        return report
