"""The Supervisor owns all scheduling state and runs the loop: intake, dispatch, sessions.

Everything else reports to it; only it mutates runs. It publishes engine events (the classes
of `engine_events`) to subscribers, the headless printer or the Textual app, and answers
`snapshot()` with a frozen `EngineView` (`view.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uuid6

from vik_tui.agents.events import AgentEvent, Outcome
from vik_tui.agents.registry import adapter_for
from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.config.schema import StageConfig, Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.clock import iso_in, now_iso
from vik_tui.engine.intake import Issue, PullResult, run_pull
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.places.local import LocalPlace, Place, Terminal, WorkspaceError
from vik_tui.engine.places.remote import RemoteAgent, RemotePlace
from vik_tui.engine.processes.descendants import (
    OWNER,
    Mark,
    Reaper,
    describe_killed,
    kill_marked,
    new_id,
    set_subreaper,
)
from vik_tui.engine.service import companions, daemon
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.logs import DailyLog, log_record
from vik_tui.engine.service.paths import Layout, UnsafeIssueId, resolve_from
from vik_tui.engine.service.recovery import INTERRUPTED, Entry, RecoveryReport, Registry
from vik_tui.engine.service.state import WorkflowLock
from vik_tui.engine.service.stop_signals import SHUTDOWN_REASON
from vik_tui.engine.stages import templates
from vik_tui.engine.stages.hooks import HookResult, run_hook
from vik_tui.engine.stages.replay import list_sessions, outcome_of, read_session_records
from vik_tui.engine.stages.runs import StageRun, backoff_delay
from vik_tui.engine.stages.session import (
    STOP_CANCEL,
    STOP_RECONCILE,
    STOP_SHUTDOWN,
    STOP_STORAGE,
    SessionLimits,
    SessionSnapshot,
    StageSession,
    write_outcome_only,
)
from vik_tui.engine.stages.takeover import TakeoverPlan, TakeoverRefused, make_plan
from vik_tui.engine.view import (
    EngineView,
    IntakeStatus,
    IntakeView,
    IssueView,
    RateLimitView,
    RejectedView,
    RetryView,
    RunStatus,
    SessionState,
    Tokens,
)

NOT_RETRIED = (STOP_CANCEL, STOP_SHUTDOWN, STOP_RECONCILE)
STAGE_REMOVED = "stage removed"
HOST_PINS_FILE = "hosts.json"  # in the service directory: which SSH host each issue lives on


@dataclass(frozen=True, slots=True)
class Site:
    """Where one attempt works: its place (this machine or an SSH host), the workspace path as
    processes there see it, and the workflow root there (`workspace_root` in templates)."""

    place: Place
    workdir: str
    root: str


class Supervisor:
    """One per workflow. `await run()`; commands may be called from the same event loop."""

    def __init__(self, workflow: Workflow, workflow_path: Path, *, watch: bool = False, lock: bool = True) -> None:
        self.workflow = workflow
        self.workflow_path = Path(os.path.abspath(workflow_path))
        self.layout = Layout.for_workflow(workflow, self.workflow_path)
        self.watch = watch
        self.use_lock = lock
        self.issues: dict[str, Issue] = {}
        self.listed: list[str] = []
        self.rejected: tuple[RejectedView, ...] = ()
        self.runs: dict[tuple[str, str], StageRun] = {}
        self.iterations = 0
        self.paused = False
        self.intake_status = IntakeStatus.STARTING
        self.intake_error: str | None = None
        self.next_poll_at: float | None = None
        self.stopping = False
        self.finished_polling = False
        self._listeners: list[ee.Listener] = []
        self._wake = asyncio.Event()  # a session ended or the config changed (drain waits on it)
        self._poll_requested = asyncio.Event()  # poll now, resume, finish or stop
        # awaited once, between the first intake and its dispatch: a screen sets it so the list
        # is drawn before the stages it dispatches are spawned (and their agents take the CPU)
        self.before_first_dispatch: Callable[[], Awaitable[None]] | None = None
        self._stop_event = asyncio.Event()
        self._log = DailyLog(self.layout.logs_dir)
        # keyed on the real path: the same workflow reached through a symlink is the same workflow
        real_path = Path(os.path.realpath(self.workflow_path))
        self._lock = WorkflowLock(Layout.for_workflow(workflow, real_path).lock_file)
        self.id = new_id()  # every process we start carries a mark under it (`descendants`)
        self.registry = Registry(self.layout)
        self.recovery: RecoveryReport | None = None
        self.stop_reason = SHUTDOWN_REASON
        self._entries: dict[str, Entry] = {}  # session uuid -> its registry entry, while it runs
        self._unwritten: dict[str, SessionSnapshot] = {}  # session files whose outcome is not written yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._quiet_views: dict[str, tuple[Issue, bool, IssueView]] = {}  # snapshot() reuses these
        self._moved_reported: dict[tuple[str, str], tuple[StageRun, str]] = {}  # issue_moved said once
        # issue id -> after_create of a new workspace: every stage of the issue waits for it
        self._workspace_ready: dict[str, asyncio.Future[str | None]] = {}
        # how this supervisor was started, for state.json's `command` (the CLI sets it)
        self.command = f"vik-tui run {self.workflow_path}"
        self.port, self.bind_address = 0, "127.0.0.1"  # the HTTP API's TCP listener, for state.json
        self._companions = companions.Companions()
        self.local = LocalPlace(self.layout)
        self._health_told: dict[str, bool] = {}  # the health last reported for each SSH host
        worker = workflow.worker
        # SSH workers: fixed for the supervisor's life (a reload that changes them applies after a restart)
        self.pool = (
            HostPool(worker, self.layout.workflow_dir, self.layout.service_dir / HOST_PINS_FILE)
            if worker is not None and worker.ssh_hosts
            else None
        )

    def add_companion(self, factory: companions.Factory) -> None:
        """A service that lives as long as `run()`, in its loop (the HTTP API): entered once the
        lock is held, exited after `supervisor_stopped`; its failures are logged, never fatal."""
        self._companions.add(factory)

    # -- subscription ------------------------------------------------------------------
    def subscribe(self, listener: ee.Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: ee.EngineEvent) -> None:
        if event.logged:
            self._log.write(log_record(event))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a broken subscriber must never stop the engine
                self._listener_failed(listener, exc)

    def _listener_failed(self, listener: ee.Listener, exc: Exception) -> None:
        """Drop a subscriber that raised, and say so once (in the log file and to the others)."""
        if listener in self._listeners:
            self._listeners.remove(listener)
        event = ee.Log(
            level="error", message=f"an engine subscriber failed and was detached: {type(exc).__name__}: {exc}"
        )
        self._log.write(log_record(event))
        for other in list(self._listeners):
            with contextlib.suppress(Exception):
                other(event)

    def log(self, level: ee.Level, message: str) -> None:
        self.emit(ee.Log(level=level, message=message))

    # -- commands ----------------------------------------------------------------------
    def cancel(self, issue_id: str, stage: str) -> str:
        """Cancel a reserved, preparing, running or retry-waiting stage."""
        run = self.runs.get((issue_id, stage))
        if run is None:
            return f"no stage {stage} for issue {issue_id}"
        if run.status == RunStatus.RETRY_WAIT:
            self._clear_retry(run)
            run.status, run.reason = RunStatus.CANCELLED, "retry cancelled by user"
            self.emit(self._finished_event(run, None))
            return "retry cancelled"
        if not run.active:
            return f"{issue_id}/{stage} is not running ({run.status})"
        self._stop_run(run, STOP_CANCEL, "cancelled by user")
        return "cancelling"

    def retry(self, issue_id: str, stage: str) -> str:
        """Run a stage again now, whatever its state, with a fresh attempt count."""
        run = self.runs.get((issue_id, stage))
        issue = self.issues.get(issue_id)
        if run is None or issue is None:
            return f"no stage {stage} for issue {issue_id}"
        if run.active:
            return f"{issue_id}/{stage} is already {run.status}"
        config = self.workflow.issue.stages.get(stage)
        if config is None:
            return f"stage {stage} is no longer in the workflow"
        self._clear_retry(run)
        ready, host = self._host_for(issue_id, self._host_load())
        if not ready:  # every usable host is full or down: dispatch starts it once one has room
            run.status, run.attempt, run.gave_up = RunStatus.RETRY_WAIT, 0, False
            run.reason = "waiting for an SSH host with room"
            return "queued: it starts once a host has room"
        self._start_run(issue, stage, config, attempt=1, previous=run, host=host)
        return "retrying"

    def poll_now(self) -> None:
        self.next_poll_at = None
        self._poll_requested.set()
        self._wake.set()

    def pause(self) -> None:
        self.paused = True
        self.intake_status = IntakeStatus.PAUSED
        self.emit(ee.IntakePaused())

    def resume(self) -> None:
        self.paused = False
        self.intake_status = IntakeStatus.IDLE
        self.emit(ee.IntakeResumed())
        self._poll_requested.set()
        self._wake.set()

    def finish(self) -> None:
        """Stop polling, let running sessions and pending retries end, then `run()` returns."""
        self.finished_polling = True
        self._poll_requested.set()
        self._wake.set()

    def stop(self, reason: str = SHUTDOWN_REASON) -> None:
        """Begin a clean shutdown: stop every session (cancelled, with `reason`), then `run()` returns."""
        if not self.stopping:
            self.stop_reason = reason
            self.stopping = True
            self.intake_status = IntakeStatus.STOPPING
            self._stop_event.set()
            self._poll_requested.set()
            self._wake.set()

    # -- snapshot ----------------------------------------------------------------------
    def snapshot(self) -> EngineView:
        """A frozen view of everything the screen shows; cheap enough to take every frame."""
        now = self._now()
        by_issue = self._runs_by_issue()
        listed = set(self.listed)
        order = list(self.listed) + [i for i in self.issues if i not in listed and i in by_issue]
        issues = []
        quiet = self._quiet_views
        pins = self.pool.pins if self.pool is not None else {}
        for issue_id in order:
            issue = self.issues[issue_id]
            runs = by_issue.get(issue_id)
            is_listed = issue_id in listed
            if not runs:  # an issue that never ran: the same view until intake replaces the issue
                cached = quiet.get(issue_id)
                if (
                    cached is not None
                    and cached[1] == is_listed
                    and (cached[0] is issue or cached[0] == issue)
                    and cached[2].host == pins.get(issue_id)
                ):
                    if cached[0] is not issue:  # a new pull, the same issue: keep the view, remember the object
                        quiet[issue_id] = (issue, is_listed, cached[2])
                    issues.append(cached[2])
                    continue
            view = IssueView(
                id=issue.id,
                title=issue.title,
                state=issue.state,
                description=issue.description,
                listed=is_listed,
                extra=issue.extra,
                runs=tuple(run.to_view(now) for run in runs or ()),
                host=pins.get(issue_id),
            )
            if not runs:
                quiet[issue_id] = (issue, is_listed, view)
            issues.append(view)
        if len(quiet) > 2 * len(self.issues) + 100:  # forget issues intake no longer knows
            self._quiet_views = {k: v for k, v in quiet.items() if k in self.issues}
        totals = {"input": 0, "output": 0, "cache_read": 0}
        rate_limits: dict[str, RateLimitView] = {}
        for run in self.runs.values():
            for session in run.sessions:
                for key in totals:
                    totals[key] += session.tokens.get(key, 0)
                for scope, info in session.rate_limits.items():
                    rate_limits[scope] = _rate_limit_view(scope, info)
        return EngineView(
            workflow=str(self.workflow_path),
            name=self.workflow_path.parent.name + "/" + self.workflow_path.name,
            intake=IntakeView(
                status=self.intake_status,
                error=self.intake_error,
                iterations=self.iterations,
                max_iterations=self.workflow.loop.max_iterations,
                paused=self.paused,
                next_poll_in=None if self.next_poll_at is None else max(0.0, self.next_poll_at - now),
            ),
            stages=tuple(self.workflow.issue.stages),
            stage_states=frozenset(stage.when.state for stage in self.workflow.issue.stages.values()),
            running=len(self._active_issue_ids()),
            max_issue_concurrency=self.workflow.loop.max_issue_concurrency,
            tokens=Tokens.of(totals),
            rate_limits=rate_limits,
            issues=tuple(issues),
            hosts=self.pool.views(self._host_load()) if self.pool is not None else (),
            rejected=self.rejected,
            retries=tuple(
                RetryView(
                    issue_id=r.issue_id,
                    stage=r.stage,
                    attempt=r.attempt,
                    due_at=r.retry_due_at,
                    due_in=max(0.0, (r.retry_due or now) - now),
                    error=r.reason,
                )
                for r in self.runs.values()
                if r.status == RunStatus.RETRY_WAIT
            ),
        )

    def workdir_of(self, issue_id: str) -> Path:
        """The issue's workspace on this machine (on an SSH host, see `place_of`)."""
        return self.layout.issue_workdir(issue_id)

    def place_of(self, issue_id: str) -> Place:
        """Where the issue lives: its SSH host once it has one, else this machine. Raises
        WorkspaceError when its host has not been reached yet."""
        host = self.pool.host_of(issue_id) if self.pool is not None else None
        return self._place(host)

    def shell_plan(self, issue_id: str) -> Terminal:
        """`s` in the UI: the user's shell in the issue's workspace (`ssh -t` on its host).
        Raises WorkspaceError (or UnsafeIssueId) with the reason when there is none to open."""
        place = self.place_of(issue_id)
        if place.host is None and not self.layout.issue_workdir(issue_id).is_dir():
            raise WorkspaceError(f"the workspace does not exist yet: {self.layout.issue_workdir(issue_id)}")
        where = f" on {place.host}" if place.host else ""
        return place.terminal(issue_id, None, f"a shell in {place.workdir(issue_id)}{where}")

    async def workspace_diff(self, issue_id: str) -> str:
        """`d` in the UI: `git status` and the diff of the issue's workspace, wherever it is."""
        try:
            place = self.place_of(issue_id)
        except WorkspaceError as exc:
            return f"({exc})"
        return await place.diff(issue_id)

    def _place(self, host: str | None) -> Place:
        if host is None or self.pool is None:
            return self.local
        return RemotePlace(self.pool.hosts[host], self.workflow, self.workflow_path, self._check_host)

    def _site(self, issue_id: str, host: str | None) -> Site:
        place = self._place(host)
        root = str(place.root.parent) if isinstance(place, RemotePlace) else str(self.layout.root)
        return Site(place, place.workdir(issue_id), root)

    def takeover_plan(self, issue_id: str, session_uuid: str) -> TakeoverPlan:
        """How to reopen a session's agent interactively (`a` in the UI); raises TakeoverRefused."""
        for run in self.runs.values():
            if run.issue_id != issue_id:
                continue
            for number, snap in enumerate(run.sessions, 1):
                if snap.session_uuid == session_uuid:
                    config = self.workflow.agents.get(run.config.agent)
                    if config is None:
                        raise TakeoverRefused(f"agent {run.config.agent!r} is no longer in the workflow")
                    try:
                        place = self.place_of(issue_id)
                    except WorkspaceError as exc:
                        raise TakeoverRefused(str(exc)) from None
                    return make_plan(
                        f"{issue_id}/{run.stage} #{number}",
                        run.active,
                        config.resolved(self.layout.workflow_dir) if place.host is None else config,
                        snap.session_file,
                        snap.agent_session_id,
                        place,
                        issue_id,
                    )
        raise TakeoverRefused(f"no session {session_uuid} of issue {issue_id}")

    def session_records(self, session_file: str, limit: int | None = None) -> list[AgentEvent]:
        """Replay a session file (for panes opened late or after a restart)."""
        return read_session_records(session_file, limit)

    def load_history(self) -> int:
        """Adopt session files left by an earlier run, so history survives restarts."""
        count = 0
        if not self.layout.sessions_dir.is_dir():
            return 0
        stage_names = list(self.workflow.issue.stages)
        for issue_dir in sorted(self.layout.sessions_dir.iterdir()):
            for path in list_sessions(self.layout.sessions_dir, issue_dir.name):
                parsed = Layout.parse_session_name(path)
                if parsed is None or parsed[0] not in stage_names:
                    continue
                stage, session_uuid = parsed
                outcome = outcome_of(path) or Outcome(
                    state=SessionState.FAILED, reason="no outcome recorded (supervisor stopped abruptly)"
                )
                snap = SessionSnapshot(issue_dir.name, stage, 0, session_uuid, str(path))
                snap.state = SessionState.parse(outcome.state)
                snap.reason = outcome.reason
                snap.exit_code = outcome.exit_code
                tokens = outcome.tokens if isinstance(outcome.tokens, dict) else {}
                snap.tokens.update({k: v for k, v in tokens.items() if isinstance(v, int)})
                snap.started_at, snap.ended_at = outcome.started_at, outcome.ended_at
                key = (issue_dir.name, stage)
                run = self.runs.get(key)
                if run is None:
                    run = StageRun(issue_dir.name, stage, self.workflow.issue.stages[stage])
                    run.rerun_allowed = True  # a restart re-dispatches, as vik does
                    self.runs[key] = run
                run.sessions.append(snap)
                run.status, run.reason, run.attempt = RunStatus(snap.state), snap.reason, len(run.sessions)
                snap.attempt = len(run.sessions)
                count += 1
        return count

    # -- main loop ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until max_iterations cycles are done and all sessions ended, or until stop()."""
        self._loop = asyncio.get_running_loop()
        holder = {"pid": os.getpid(), "started_at": now_iso(), "cwd": os.getcwd(), "workflow": str(self.workflow_path)}
        if self.use_lock:
            self._lock.acquire(holder)  # raises AlreadyRunning
        self.layout.root.mkdir(parents=True, exist_ok=True)
        state = daemon.ServiceState.for_supervisor(self.layout, self.command, self.port, self.bind_address)
        daemon.write_state(self.layout.state_file, state)
        self.emit(ee.SupervisorStarted(workflow=str(self.workflow_path), root=str(self.layout.root), pid=os.getpid()))
        OWNER.set(Mark(self.id, "supervisor", "intake"))  # this task and every task it creates
        subreaper = set_subreaper(True)
        reaper = Reaper() if subreaper else None
        reaping = asyncio.ensure_future(reaper.run()) if reaper else None
        watcher = health = None
        try:
            await self._companions.start(lambda message: self.log("error", message))
            await self._recover()
            watcher = asyncio.ensure_future(self._watch_config()) if self.watch else None
            if self.pool is not None:
                self.pool.open()
                await self._check_hosts(list(self.pool.hosts))  # before the first dispatch
                await self._recover_hosts()
                health = asyncio.ensure_future(self._watch_hosts())
            await self._loop_cycles()
            await self._drain()
        finally:
            if watcher:
                watcher.cancel()
            if health:
                health.cancel()
            await self._shutdown()
            if self.pool is not None:
                await self.pool.stop()
            self._write_pending_outcomes()
            await self._kill_leftovers(f"{self.id}/", "the supervisor")
            if reaping is not None and reaper is not None:
                reaping.cancel()
                reaper.reap_once()
            if subreaper:
                set_subreaper(False)
            self.registry.supervisor_stopped()
            self.emit(ee.SupervisorStopped(iterations=self.iterations))
            await self._companions.stop(lambda message: self.log("error", message))
            self._log.close()
            daemon.remove_state(self.layout.state_file, os.getpid())  # vik removes it at a clean exit
            if self.use_lock:
                self._lock.release()
        return 0

    async def _recover(self) -> None:
        """Before any dispatch: what a supervisor killed with SIGKILL left behind (`recovery`)."""
        if not self.use_lock:
            return  # without the lock another supervisor may be running these stages
        try:
            self.recovery = report = await self.registry.sweep(float(self.workflow.loop.cancel_grace_sec))
            self.registry.supervisor_started(self.id, self.pool.control_dir if self.pool is not None else None)
        except OSError as exc:
            self.log("error", f"crash recovery could not use {self.registry.directory}: {describe_os_error(exc)}")
            return
        if not report.anything:
            return
        self.log("warning" if not report.unwritable else "error", report.describe())
        closed = set(report.interrupted)
        for run in self.runs.values():  # sessions the UI already loaded from disk
            for snap in run.sessions:
                if snap.session_file in closed:
                    snap.reason = INTERRUPTED
            if run.sessions and run.sessions[-1].session_file in closed:
                run.reason = INTERRUPTED

    async def _kill_leftovers(self, prefix: str, owner: str, site: Site | None = None) -> list[int]:
        """Kill what is left carrying a mark under `prefix` (`setsid` ones too), here and on the
        issue's SSH host; say so."""
        grace = float(self.workflow.loop.cancel_grace_sec)
        killed = await kill_marked([prefix], grace)
        if killed:
            pids = describe_killed(killed)
            self.log("warning", f"killed {len(killed)} process(es) left running by {owner}: pid {pids}")
        if site is not None and site.place.host is not None:
            remote = await site.place.sweep(prefix, grace)
            if remote:
                pids = describe_killed(remote)
                self.log(
                    "warning",
                    f"killed {len(remote)} process(es) left running by {owner} on {site.place.host}: pid {pids}",
                )
        return killed

    async def _loop_cycles(self) -> None:
        while not self.stopping and not self.finished_polling:
            if not self.paused:
                self._poll_requested.clear()  # a poll_now() during this cycle must not be lost
                await self._intake_cycle()
                if self.stopping:
                    return
                max_iter = self.workflow.loop.max_iterations
                if max_iter is not None and self.iterations >= max_iter:
                    self.finished_polling = True
                    self.intake_status = IntakeStatus.DONE
                    self.next_poll_at = None
                    return
            await self._sleep_until_next_poll()
        if self.finished_polling:
            self.intake_status = IntakeStatus.DONE
            self.next_poll_at = None

    async def _sleep_until_next_poll(self) -> None:
        idle = float(self.workflow.issues.pull.idle_sec)
        self.next_poll_at = None if self.paused else self._now() + idle
        if not self.paused:
            self.intake_status = IntakeStatus.IDLE if self.intake_error is None else IntakeStatus.ERROR
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poll_requested.wait(), None if self.paused else idle)

    async def _drain(self) -> None:
        """After the last cycle: wait until every session ended and no retry is pending, and
        every attempt's task has finished its clean-up (a run is `completed` before its task
        has swept the host and dispatched what was waiting for its slot)."""
        while not self.stopping and any(
            r.status.cancellable or (r.task is not None and not r.task.done()) for r in self.runs.values()
        ):
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.workflow.loop.wait_ms / 1000)

    async def _shutdown(self) -> None:
        self.stopping = True
        for run in self.runs.values():
            self._clear_retry(run)
            if run.reconcile_handle:
                run.reconcile_handle.cancel()
            if run.active:
                self._stop_run(run, STOP_SHUTDOWN, self.stop_reason)
        tasks = [r.task for r in self.runs.values() if r.task and not r.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- SSH worker hosts ----------------------------------------------------------------
    async def _check_hosts(self, names: list[str]) -> None:
        await asyncio.gather(*(self._check_host(name) for name in names))

    async def _check_host(self, name: str) -> bool:
        """Check one host and say so when its health changed; a recovered host takes work again.
        Also the places' drop handler: after an `ssh` exited 255 it tells a dropped connection
        (False) from a command's own exit status 255 (True: the host answers)."""
        assert self.pool is not None
        host = self.pool.hosts[name]
        ok = await self.pool.check(name)
        told = self._health_told.get(name)  # checks run concurrently: say each change once
        if ok and told is not True:
            self._health_told[name] = True
            self.emit(ee.HostHealthy(host=name, recovered=told is False))
            self._dispatch()
        elif not ok and told is not False:
            self._health_told[name] = False
            self.emit(ee.HostUnhealthy(host=name, error=host.error or "unreachable"))
        return ok

    async def _recover_hosts(self) -> None:
        """A supervisor killed with SIGKILL left agents on its SSH hosts (killing the local `ssh`
        ends nothing there): sweep each host by the dead attempts' marks."""
        assert self.pool is not None
        left = self.recovery.remote if self.recovery is not None else []
        grace = float(self.workflow.loop.cancel_grace_sec)
        for name in sorted({host for host, _prefix in left}):
            prefixes = [prefix for host, prefix in left if host == name]
            host = self.pool.hosts.get(name)
            if host is None or not host.healthy:
                why = "no longer in worker.ssh_hosts" if host is None else "unreachable"
                self.log(
                    "warning", f"recovery: {name} is {why}; processes of {len(prefixes)} stage(s) may remain there"
                )
                continue
            place = self._place(name)
            killed = [pid for prefix in prefixes for pid in await place.sweep(prefix, grace)]
            if killed:
                self.log("warning", f"recovery: killed {len(killed)} process(es) left running on {name}")

    def _host_error(self, name: str) -> str | None:
        return self.pool.hosts[name].error if self.pool is not None else None

    async def _watch_hosts(self) -> None:
        """Check the unhealthy hosts again every `worker.health_check_sec` until one answers."""
        assert self.pool is not None
        while not self.stopping:
            await asyncio.sleep(self.pool.health_check_sec)
            down = [h.name for h in self.pool.hosts.values() if h.healthy is not True]
            if down:
                await self._check_hosts(down)

    def _host_load(self) -> dict[str, int]:
        """Stage sessions preparing or running on each host now."""
        load: dict[str, int] = {}
        for run in self.runs.values():
            if run.host is not None and run.active:
                load[run.host] = load.get(run.host, 0) + 1
        return load

    def _host_for(self, issue_id: str, load: dict[str, int]) -> tuple[bool, str | None]:
        """(may start now, host) for the issue's next stage. No pool: always, on this machine."""
        if self.pool is None:
            return True, None
        placement = self.pool.place(issue_id, load)
        if placement.host is None:
            return False, None  # every usable host is full, or none answers: wait
        if placement.moved_from is not None:
            previous = self.pool.hosts[placement.moved_from]
            reason = f"{placement.moved_from} unreachable" + (f" ({previous.error})" if previous.error else "")
            self.emit(
                ee.IssueRehosted(issue=issue_id, from_host=placement.moved_from, to_host=placement.host, reason=reason)
            )
        self.pool.pin(issue_id, placement.host)
        load[placement.host] = load.get(placement.host, 0) + 1
        return True, placement.host

    # -- intake ------------------------------------------------------------------------
    async def _intake_cycle(self) -> None:
        self.intake_status = IntakeStatus.POLLING
        self.emit(ee.IntakePolling())
        pull = self.workflow.issues.pull
        try:
            command = templates.render(
                pull.command,
                templates.pull_context(self.workflow_path, self.layout.root),
                "issues.pull.command",
            )
        except templates.TemplateError as exc:
            result = PullResult(error=f"cannot render the pull command: {exc}")
        else:
            result = await run_pull(command, self.layout.workflow_dir, float(self.workflow.loop.pull_timeout_sec))
        self.iterations += 1
        if not result.ok:
            self.intake_error = result.error
            self.intake_status = IntakeStatus.ERROR
            self.emit(
                ee.IntakeFailed(
                    error=result.error or "",
                    exit_code=result.exit_code,
                    stderr=result.stderr_tail[-1000:],
                    iteration=self.iterations,
                )
            )
            return
        self.intake_error = None
        self._apply_intake(result)
        self.emit(ee.Intake(issues=len(result.issues), rejected=len(result.rejected), iteration=self.iterations))
        for item in result.rejected:
            self.emit(ee.IssueRejected(id=item.issue_id, index=item.index, reason=item.reason))
        hook, self.before_first_dispatch = self.before_first_dispatch, None
        if hook is not None:
            await hook()
        self._dispatch()

    def _apply_intake(self, result: PullResult) -> None:
        self.listed = [i.id for i in result.issues]
        self.issues.update((issue.id, issue) for issue in result.issues)
        self.rejected = tuple(RejectedView(index=r.index, id=r.issue_id, reason=r.reason) for r in result.rejected)
        listed = set(self.listed)
        for run in self.runs.values():
            issue = self.issues.get(run.issue_id)
            present = run.issue_id in listed
            in_state = present and issue is not None and issue.state == run.config.when.state
            if in_state:
                if run.reconcile_handle:
                    run.reconcile_handle.cancel()
                    run.reconcile_handle = None
                    self.log(
                        "info", f"{run.issue_id}/{run.stage}: issue is back in `{run.config.when.state}`; not stopping"
                    )
                continue
            reason = f"issue moved to {issue.state}" if present and issue else "issue no longer listed"
            if run.status.terminal:
                run.rerun_allowed = True
            elif run.status == RunStatus.RETRY_WAIT:
                self._clear_retry(run)
                run.status, run.reason = RunStatus.FAILED, f"{run.reason}; retry dropped: {reason}"
                run.rerun_allowed = True
                self.emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))
            elif run.active and not self.workflow.loop.reconcile:
                self._report_moved(run, issue.state if present and issue else None, reason)
            elif run.active and run.reconcile_handle is None and run.abort is None:
                grace = float(self.workflow.loop.reconcile_grace_sec)
                assert self._loop is not None
                run.reconcile_handle = self._loop.call_later(grace, self._reconcile_now, run, reason)
                self.emit(ee.ReconcilePending(issue=run.issue_id, stage=run.stage, reason=reason, grace_sec=grace))

    def _report_moved(self, run: StageRun, state: str | None, reason: str) -> None:
        """vik's rule (ADR 0003): a running stage is never stopped because the tracker changed;
        its agent is often the one that moved the issue. Said once per move, as information."""
        if self._moved_reported.get((run.issue_id, run.stage)) == (run, reason):
            return
        self._moved_reported[(run.issue_id, run.stage)] = (run, reason)
        self.emit(ee.IssueMoved(issue=run.issue_id, stage=run.stage, state=state, reason=reason))

    def _reconcile_now(self, run: StageRun, reason: str) -> None:
        run.reconcile_handle = None
        if run.active:
            self._stop_run(run, STOP_RECONCILE, reason)

    # -- dispatch ----------------------------------------------------------------------
    def _active_issue_ids(self) -> set[str]:
        return {r.issue_id for r in self.runs.values() if r.active}

    def _dispatch(self) -> None:
        """docs/architecture.md §3 (dispatch): exact state match, stages in file order, reserve before any await."""
        if self.stopping:
            return
        limit = self.workflow.loop.max_issue_concurrency
        active = self._active_issue_ids()
        load = self._host_load()
        for due in [r for r in self.runs.values() if r.status == RunStatus.RETRY_WAIT and r.retry_handle is None]:
            waiting = self.issues.get(due.issue_id)
            if waiting is None or (due.issue_id not in active and len(active) >= limit):
                continue
            config = self.workflow.issue.stages.get(due.stage)
            if config is None:  # removed by a reload since the retry was scheduled
                self._drop_retry(due, STAGE_REMOVED)
                continue
            ready, host = self._host_for(due.issue_id, load)
            if not ready:
                continue
            active.add(due.issue_id)
            self._start_run(waiting, due.stage, config, attempt=due.attempt + 1, previous=due, host=host)
        for issue_id in self.listed:
            issue = self.issues[issue_id]
            for stage_name, stage in self.workflow.issue.stages.items():
                if issue.state != stage.when.state:
                    continue
                run = self.runs.get((issue_id, stage_name))
                if run is not None and not (run.status.terminal and run.rerun_allowed):
                    continue  # active, waiting to retry, or finished while the issue kept this state
                if issue_id not in active and len(active) >= limit:
                    continue
                ready, host = self._host_for(issue_id, load)
                if not ready:
                    continue
                active.add(issue_id)
                self._start_run(issue, stage_name, stage, attempt=1, previous=run, host=host)

    def _start_run(
        self,
        issue: Issue,
        stage_name: str,
        stage: StageConfig,
        attempt: int,
        previous: StageRun | None,
        host: str | None = None,
    ) -> None:
        run = StageRun(issue_id=issue.id, stage=stage_name, config=stage, attempt=attempt, host=host)
        if previous is not None:
            run.sessions = previous.sessions  # history of every attempt stays visible
        self.runs[(issue.id, stage_name)] = run
        self.emit(ee.StageReserved(issue=issue.id, stage=stage_name, attempt=attempt))
        run.task = asyncio.ensure_future(self._execute(run, issue))

    def _stop_run(self, run: StageRun, cause: str, reason: str) -> None:
        if run.session is not None:
            run.session.stop(cause, reason)
            run.abort = run.abort or (cause, reason)  # a stop is under way (no second reconcile)
        elif run.abort is None:
            run.abort = (cause, reason)
            if run.task and cause == STOP_SHUTDOWN:
                run.task.cancel()

    # -- one attempt -------------------------------------------------------------------
    async def _execute(self, run: StageRun, issue: Issue) -> None:
        workflow = self.workflow  # running sessions keep the configuration they started with
        session_uuid = str(uuid6.uuid7())
        try:
            session_file = self.layout.session_file(issue.id, run.stage, session_uuid)
            site = self._site(issue.id, run.host)
        except (UnsafeIssueId, WorkspaceError) as exc:  # intake already filters these; defence in depth
            run.status, run.reason = RunStatus.FAILED, str(exc)
            self.emit(ee.IssueRejected(level="error", id=issue.id, index=None, reason=str(exc)))
            return
        snap = SessionSnapshot(issue.id, run.stage, run.attempt, session_uuid, str(session_file), host=run.host)
        run.sessions.append(snap)
        self._write_pending_outcomes()
        mark = Mark(self.id, session_uuid, "stage")
        OWNER.set(mark)  # this task's hooks and exec() runs are marked as the attempt's
        entry = Entry(
            session_uuid, str(session_file), issue.id, run.stage, run.attempt, mark.scope_prefix, host=run.host
        )
        try:
            try:
                self.registry.record(entry)  # durable before any process of the attempt starts
            except OSError as exc:
                raise _StorageError(f"cannot record the stage in {self.registry.directory}", exc) from exc
            self._entries[session_uuid] = entry
            run.status = RunStatus.PREPARING
            failure, prompt = await self._prepare(run, issue, workflow, site)
            if failure is None and run.abort:
                failure = run.abort[1]
            if failure is not None:
                state = SessionState.CANCELLED if run.abort and run.abort[0] in NOT_RETRIED else SessionState.FAILED
                self._write_outcome(snap, state, failure)
                snap.stop_cause = run.abort[0] if run.abort else None
                await self._finish(run, snap, issue, workflow, site, ran_agent=False)
                return
            agent = workflow.agents[run.config.agent]
            if site.place.host is None:  # a relative command path is the workflow's, here; on a host, the workspace's
                agent = agent.resolved(self.layout.workflow_dir)
            adapter = adapter_for(agent.runtime)
            loop = workflow.loop
            spawn = site.place.agent(adapter.build_command(agent), site.workdir, mark.child("agent"))
            session = StageSession(
                snap,
                spawn.argv,
                spawn.cwd,
                prompt,
                adapter.new_mapper(),
                SessionLimits(
                    float(loop.stage_timeout_sec), float(loop.stall_timeout_sec), float(loop.cancel_grace_sec)
                ),
                on_events=self._on_session_events,
                env=spawn.env,
                executable_label=agent.executable,
                on_start=self._on_session_start,
                remote=(
                    RemoteAgent(site.place, mark.child("agent").value, self._host_error)
                    if isinstance(site.place, RemotePlace)
                    else None
                ),
            )
            run.session = session
            try:
                await session.run()
            except OSError as exc:  # the session file cannot even be opened
                raise _StorageError(f"cannot write the session file {session_file}", exc) from exc
            if session.outcome_unwritten:
                self._unwritten[snap.session_file] = snap
            if snap.stop_cause == STOP_STORAGE:
                self.log("error", f"{issue.id}/{run.stage}: {snap.reason} ({session_file}); the agent was stopped")
            await self._finish(run, snap, issue, workflow, site, ran_agent=True)
        except asyncio.CancelledError:
            if not snap.finished:
                self._write_outcome(snap, SessionState.CANCELLED, self.stop_reason)
            run.status, run.reason = RunStatus.CANCELLED, snap.reason
            self.emit(self._finished_event(run, snap))
            raise
        except _StorageError as exc:  # a storage failure ends the stage, never the supervisor
            reason = str(exc)
            self.log("error", f"{issue.id}/{run.stage}: {reason}")
            if not snap.finished:
                self._write_outcome(snap, SessionState.FAILED, reason)
            snap.stop_cause = STOP_STORAGE
            run.status, run.reason = RunStatus.FAILED, reason
            self.emit(self._finished_event(run, snap, level="error"))
            self._schedule_retry(run, workflow)
        except Exception as exc:  # a bug must never take the loop down; record it instead
            reason = f"internal error: {type(exc).__name__}: {exc}"
            if not snap.finished:
                self._write_outcome(snap, SessionState.FAILED, reason)
            run.status, run.reason = RunStatus.FAILED, reason
            self.emit(self._finished_event(run, snap, level="error"))
        finally:
            run.session = None
            # whatever the attempt started and left (a hook's or the agent's `setsid` children)
            await asyncio.shield(self._kill_leftovers(mark.scope_prefix, f"{issue.id}/{run.stage}", site))
            self._entries.pop(session_uuid, None)
            if snap.finished and snap.session_file not in self._unwritten:
                self.registry.forget(session_uuid)  # else the next start's sweep gives it an outcome
            self._wake.set()
            if not self.stopping:
                self._dispatch()

    def _write_outcome(self, snap: SessionSnapshot, state: SessionState, reason: str) -> None:
        """`write_outcome_only`, except that a failed write is reported, not raised: the snapshot
        still ends, and the next start gives the file its outcome (`recovery`)."""
        try:
            write_outcome_only(snap, state, reason)
        except OSError as exc:
            snap.state, snap.reason = state, reason
            self._unwritten[snap.session_file] = snap
            self.log("error", f"cannot write the outcome of {snap.session_file}: {describe_os_error(exc)}")

    def _write_pending_outcomes(self) -> None:
        """Outcomes a full disk kept out of their files: try again (a new stage starts, or the
        supervisor stops). What still fails is left to the next start's sweep (`recovery`)."""
        for path, snap in list(self._unwritten.items()):
            try:
                write_outcome_only(snap, SessionState.parse(snap.state), snap.reason or "")
            except OSError:
                return
            del self._unwritten[path]
            self.registry.forget(snap.session_uuid)

    def _on_session_start(self, session: StageSession) -> None:
        snap = session.snap
        entry = self._entries.get(snap.session_uuid)
        if entry is not None and snap.pid is not None:
            try:  # before the session reads the agent's first byte
                self.registry.agent_started(entry, snap.pid)
            except OSError as exc:
                reason = f"cannot record the agent in {self.registry.directory}: {describe_os_error(exc)}"
                self.log("error", f"{snap.issue_id}/{snap.stage}: {reason}")
                session.stop(STOP_STORAGE, reason)
        run = self.runs.get((snap.issue_id, snap.stage))
        if run is not None and run.session is session:
            run.status = RunStatus.RUNNING  # only once the process exists, so a running stage has a pid
        self.emit(
            ee.StageStarted(
                issue=snap.issue_id,
                stage=snap.stage,
                attempt=snap.attempt,
                pid=snap.pid,
                session_file=snap.session_file,
                host=snap.host,
            )
        )

    async def _prepare(self, run: StageRun, issue: Issue, workflow: Workflow, site: Site) -> tuple[str | None, str]:
        """Workspace, hooks and prompt. Returns (failure reason or None, rendered prompt)."""
        hooks_timeout = float(workflow.loop.hook_timeout_sec)
        context = templates.build_context(
            issue.template_fields(), run.stage, site.workdir, site.root, self.workflow_path
        )
        failure = await self._workspace(run, issue, workflow, site, context)
        if failure is not None:
            return failure, ""
        if run.config.hooks.before_run:
            result = await self._hook(run, "before_run", run.config.hooks.before_run, context, site, hooks_timeout)
            if not result.ok:
                return result.summary, ""
        try:
            source = run.config.prompt
            if source is None:
                prompt_path = resolve_from(self.layout.workflow_dir, run.config.prompt_file or "")
                source = prompt_path.read_text(encoding="utf-8")
            # exec() runs in the supervisor's own directory, as vik runs it in its process's; on an
            # SSH host there is no such directory: it runs in the issue's workspace there
            exec_dir = Path.cwd() if site.place.host is None else site.workdir
            prompt = await templates.render_prompt(
                source, context, exec_dir, f"stage {run.stage} prompt", shell=site.place.shell
            )
        except (OSError, UnicodeDecodeError) as exc:
            return f"cannot read prompt file: {exc}", ""
        except templates.TemplateError as exc:
            return f"prompt render failed: {exc}", ""
        return None, prompt

    async def _workspace(
        self, run: StageRun, issue: Issue, workflow: Workflow, site: Site, context: dict[str, Any]
    ) -> str | None:
        """Create the issue's workspace and run after_create once, before any stage of the
        issue goes on: a sibling stage dispatched meanwhile waits for the same hook (a slow
        `git clone` must finish first) and fails with it. Returns the failure, if any."""
        pending = self._workspace_ready.get(issue.id)
        if pending is not None:
            return await asyncio.shield(pending)
        place = site.place
        after_create = workflow.issue.hooks.after_create
        ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._workspace_ready[issue.id] = ready
        failure: str | None = "workspace preparation was interrupted"
        created = False
        try:
            created = await place.ensure_workdir(issue.id)  # the boundary is checked there too
            if created and after_create:
                hooks_timeout = float(workflow.loop.hook_timeout_sec)
                result = await self._hook(
                    run, "after_create", after_create, templates.without_stage(context), site, hooks_timeout
                )
                failure = None if result.ok else result.summary
            else:
                failure = None
        except WorkspaceError as exc:
            failure = str(exc)
        finally:
            if failure is not None and created:  # failed or interrupted: the next attempt creates it afresh
                with contextlib.suppress(Exception):
                    await asyncio.shield(place.remove_workdir(issue.id))
            del self._workspace_ready[issue.id]
            ready.set_result(failure)
        return failure

    async def _hook(
        self, run: StageRun, name: str, source: str, context: dict[str, Any], site: Site, timeout: float
    ) -> HookResult:
        try:
            script = templates.render(source, context, f"hook {name}")
        except templates.TemplateError as exc:
            result = HookResult(name, False, None, "", "", error=str(exc))
        else:
            result = await run_hook(
                name,
                script,
                site.workdir,
                timeout,
                grace_sec=float(self.workflow.loop.cancel_grace_sec),
                shell=site.place.shell,
            )
        self.emit(
            ee.HookFinished(
                level="info" if result.ok else "error",
                issue=run.issue_id,
                stage=run.stage,
                hook=name,
                ok=result.ok,
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                error=result.error,
                stdout_tail=result.stdout_tail[-500:],
                stderr_tail=result.stderr_tail[-500:],
            )
        )
        if result.note:
            self.log("warning", f"{run.issue_id}/{run.stage}: {result.note}")
        return result

    async def _finish(
        self, run: StageRun, snap: SessionSnapshot, issue: Issue, workflow: Workflow, site: Site, ran_agent: bool
    ) -> None:
        if run.reconcile_handle:
            run.reconcile_handle.cancel()
            run.reconcile_handle = None
        cause = snap.stop_cause
        if ran_agent and cause not in (STOP_CANCEL, STOP_SHUTDOWN) and run.config.hooks.after_run:
            context = templates.build_context(
                issue.template_fields(), run.stage, site.workdir, site.root, self.workflow_path
            )
            context["issue"]["outcome"] = snap.state
            await self._hook(
                run, "after_run", run.config.hooks.after_run, context, site, float(workflow.loop.hook_timeout_sec)
            )
        run.status, run.reason = RunStatus(snap.state), snap.reason
        failed = run.status == RunStatus.FAILED
        self.emit(self._finished_event(run, snap, level="error" if failed else "info"))
        if failed and cause not in NOT_RETRIED:
            self._schedule_retry(run, workflow)

    def _finished_event(
        self, run: StageRun, snap: SessionSnapshot | None, level: ee.Level = "info"
    ) -> ee.StageFinished:
        return ee.StageFinished(
            level=level,
            issue=run.issue_id,
            stage=run.stage,
            attempt=run.attempt,
            state=run.status,
            reason=run.reason,
            exit_code=snap.exit_code if snap else None,
            signal=snap.signal if snap else None,
            tokens=dict(snap.tokens) if snap else {},
            session_file=snap.session_file if snap else None,
        )

    # -- retries -----------------------------------------------------------------------
    def _schedule_retry(self, run: StageRun, workflow: Workflow) -> None:
        policy = workflow.loop.retry
        if self.stopping:
            return
        if run.attempt >= policy.max_attempts:
            run.gave_up = True
            self.emit(ee.RetryGivenUp(issue=run.issue_id, stage=run.stage, attempts=run.attempt, reason=run.reason))
            return
        delay = backoff_delay(run.attempt, float(policy.backoff_sec), float(policy.max_backoff_sec))
        assert self._loop is not None
        run.status = RunStatus.RETRY_WAIT
        run.retry_due = self._now() + delay
        run.retry_due_at = iso_in(delay)
        run.retry_handle = self._loop.call_later(delay, self._retry_due, run)
        self.emit(
            ee.RetryScheduled(
                issue=run.issue_id, stage=run.stage, attempt=run.attempt + 1, delay_sec=delay, due_at=run.retry_due_at
            )
        )

    def _retry_due(self, run: StageRun) -> None:
        """The backoff is over: run it when the issue still shows the state and a slot is free."""
        run.retry_handle = None
        if self.runs.get((run.issue_id, run.stage)) is not run or run.status != RunStatus.RETRY_WAIT or self.stopping:
            return
        issue = self.issues.get(run.issue_id)
        if issue is None or run.issue_id not in self.listed or issue.state != run.config.when.state:
            run.status = RunStatus.FAILED
            run.rerun_allowed = True
            self.emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason="issue left the stage's state"))
            return
        self._dispatch()  # picks up due retries first, within max_issue_concurrency

    def _drop_retry(self, run: StageRun, reason: str) -> None:
        """A pending retry that must not run any more: the run stays failed, and says why."""
        self._clear_retry(run)
        run.status = RunStatus.FAILED
        run.reason = f"{run.reason}; retry dropped: {reason}" if run.reason else f"retry dropped: {reason}"
        self.emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))

    def _clear_retry(self, run: StageRun) -> None:
        if run.retry_handle:
            run.retry_handle.cancel()
        run.retry_handle, run.retry_due, run.retry_due_at = None, None, None

    # -- hot reload --------------------------------------------------------------------
    def watched_paths(self) -> list[Path]:
        paths = {self.workflow_path}
        for stage in self.workflow.issue.stages.values():
            if stage.prompt_file:
                paths.add(resolve_from(self.layout.workflow_dir, stage.prompt_file))
        return sorted(paths)

    def reload(self) -> LoadResult:
        """Validate the files on disk; apply only a clean configuration."""
        result = load_workflow(self.workflow_path)
        if not result.ok or result.workflow is None:
            for diag in result.errors:
                self.log("error", f"config reload rejected: {diag.render(self.workflow_path.name)}")
            self.emit(ee.ConfigRejected(errors=tuple(result.errors)))
            return result
        new_layout = Layout.for_workflow(result.workflow, self.workflow_path)
        if new_layout.root != self.layout.root:
            self.log("warning", "workspace location changed; it applies after a restart")
        self.workflow = result.workflow
        self.emit(ee.ConfigReloaded(warnings=len(result.warnings)))
        for run in list(self.runs.values()):
            if run.status == RunStatus.RETRY_WAIT and run.stage not in self.workflow.issue.stages:
                self._drop_retry(run, STAGE_REMOVED)
        self._wake.set()
        return result

    async def _watch_config(self) -> None:
        import watchfiles

        while not self.stopping:
            targets = {str(p) for p in self.watched_paths()}
            dirs = sorted({str(Path(p).parent) for p in targets if Path(p).parent.exists()})
            try:
                async for _changes in watchfiles.awatch(
                    *dirs,
                    watch_filter=lambda _c, path: path in targets,  # noqa: B023 - used only inside this iteration
                    recursive=False,
                    stop_event=self._stop_event,
                    debounce=200,
                    step=50,
                ):
                    self.reload()
                    break  # the set of prompt files may have changed: rebuild the watch
            except Exception as exc:  # never let the watcher take the supervisor down
                self.log("warning", f"config watcher stopped: {exc}")
                return

    # -- helpers -----------------------------------------------------------------------
    def _runs_by_issue(self) -> dict[str, list[StageRun]]:
        """Runs grouped by issue in stage file order: one pass, not one scan per issue."""
        order = {name: index for index, name in enumerate(self.workflow.issue.stages)}
        grouped: dict[str, list[StageRun]] = {}
        for (issue_id, _stage), run in self.runs.items():
            grouped.setdefault(issue_id, []).append(run)
        for runs in grouped.values():
            runs.sort(key=lambda r: order.get(r.stage, len(order)))
        return grouped

    def _on_session_events(self, session: StageSession, records: list[AgentEvent]) -> None:
        snap = session.snap
        if not self._listeners:
            return
        self.emit(
            ee.AgentEvents(
                issue=snap.issue_id,
                stage=snap.stage,
                attempt=snap.attempt,
                session_file=snap.session_file,
                records=records,
            )
        )

    def _now(self) -> float:
        loop = self._loop or asyncio.get_event_loop()
        return loop.time()


def _rate_limit_view(scope: str, info: Mapping[str, Any]) -> RateLimitView:
    """The session keeps each scope's latest rate_limit record as a dict; the view is typed."""

    def number(key: str) -> Any:
        value = info.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    resets_at = info.get("reset_at", info.get("resets_at"))  # vik's name; `resets_at` before it
    return RateLimitView(
        scope=scope,
        used_percent=number("used_percent"),
        remaining=number("remaining"),
        limit=number("limit"),
        resets_at=resets_at if isinstance(resets_at, str) else None,
    )


class _StorageError(Exception):
    """A write the engine needs failed; the message names what and the OS error."""

    def __init__(self, what: str, exc: OSError) -> None:
        super().__init__(f"{what}: {describe_os_error(exc)}")
