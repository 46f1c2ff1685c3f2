"""The Supervisor owns all scheduling state and runs the loop: intake, dispatch, sessions.

Everything else reports to it; only it mutates runs. It publishes engine events (the classes
of `engine_events`) to subscribers, the headless printer or the Textual app, and answers
`snapshot()` with a frozen `EngineView` (`view.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from vik_tui.agents.events import AgentEvent, RateLimit, TokenUsage
from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.config.schema import StageConfig, Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine import history, intake, notify, reload, views
from vik_tui.engine.budget import DailyBudget, next_utc_midnight, session_over, tokens_of
from vik_tui.engine.bus import EventBus
from vik_tui.engine.clock import now_iso
from vik_tui.engine.intake import Issue, PullResult
from vik_tui.engine.places.coordination import HostCoordination
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.places.local import Place, WorkspaceError
from vik_tui.engine.processes.cgroups import Cgroups
from vik_tui.engine.processes.descendants import (
    OWNER,
    Mark,
    Reaper,
    new_id,
    set_subreaper,
)
from vik_tui.engine.rate_limits import Hold, RateLimits
from vik_tui.engine.service import companions, daemon
from vik_tui.engine.service.atomic import remove_service_temp_files
from vik_tui.engine.service.completed import COMPLETED_FILE, WAITING_REASON, CompletedStore
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.logs import DailyLog
from vik_tui.engine.service.paths import Layout, UnsafeIssueId
from vik_tui.engine.service.recovery import INTERRUPTED, RecoveryReport, Registry
from vik_tui.engine.service.retries import PendingRetry, RetryStore
from vik_tui.engine.service.state import WorkflowLock
from vik_tui.engine.service.stop_signals import SHUTDOWN_REASON, unless_stopped
from vik_tui.engine.stages.attempt import Attempt, Attempts, StorageError
from vik_tui.engine.stages.replay import read_session_records
from vik_tui.engine.stages.runs import StageRun, backoff_delay, stages_of_another_state, waiting_text
from vik_tui.engine.stages.session import (
    SessionFacts,
    StageSession,
    StopCause,
)
from vik_tui.engine.stages.takeover import TakeoverRefused
from vik_tui.engine.view import (
    BudgetView,
    EngineView,
    HoldKind,
    HoldView,
    IntakeStatus,
    IntakeView,
    Refused,
    RejectedView,
    RunStatus,
    SessionState,
    StageSpec,
    Terminal,
)
from vik_tui.engine.workspaces import Workspaces

STAGE_REMOVED = "stage removed"
DRAINED = "drained"  # the stop reason once a drain is over
HOST_PINS_FILE = "hosts.json"  # in the service directory: which SSH host each issue lives on


class Supervisor:
    """One per workflow. `await run()`; commands may be called from the same event loop."""

    def __init__(
        self,
        workflow: Workflow,
        workflow_path: Path,
        *,
        watch: bool = False,
        lock: bool = True,
        command: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.workflow_path = Path(os.path.abspath(workflow_path))
        self.layout = Layout.for_workflow(workflow, self.workflow_path)
        self._watch = watch
        self._use_lock = lock
        self._issues: dict[str, Issue] = {}
        self._listed: list[str] = []
        self._rejected: tuple[RejectedView, ...] = ()
        self.runs: dict[tuple[str, str], StageRun] = {}
        self._iterations = 0
        self._paused = False
        self._intake_status = IntakeStatus.STARTING
        self._intake_error: str | None = None
        self._next_poll_at: float | None = None
        self._stopping = False
        self._draining = False  # drain(): no new dispatch, no retry; stop once nothing runs
        self._finished_polling = False
        self._pulled = False  # a good pull happened: the listed issues are known
        self._retry_store = RetryStore(self.layout.service_dir)
        self._daily = DailyBudget()
        self._budget_said = ""  # the UTC day `budget_spent` was said
        self._rate_limits = RateLimits()
        self._timers: dict[str, asyncio.TimerHandle] = {}  # a dispatch when a hold ends, by hold
        self._holds_said: dict[str, Hold] = {}  # runtime -> the rate-limit hold last said
        self._wake = asyncio.Event()  # a session ended or the config changed (drain waits on it)
        self._poll_requested = asyncio.Event()  # poll now, resume, finish or stop
        # awaited once, between the first intake and its dispatch: a screen sets it so the list
        # is drawn before the stages it dispatches are spawned (and their agents take the CPU)
        self.before_first_dispatch: Callable[[], Awaitable[None]] | None = None
        self._stop_event = asyncio.Event()
        self._bus = EventBus(DailyLog(self.layout.logs_dir))
        # keyed on the real path: the same workflow reached through a symlink is the same workflow
        real_path = Path(os.path.realpath(self.workflow_path))
        self._lock = WorkflowLock(Layout.for_workflow(workflow, real_path).lock_file)
        self._id = new_id()  # every process we start carries a mark under it (`descendants`)
        self.registry = Registry(self.layout)
        self.recovery: RecoveryReport | None = None
        self._stop_reason = SHUTDOWN_REASON
        self._loop: asyncio.AbstractEventLoop | None = None
        self._issue_views = views.IssueViews()  # snapshot() reuses the views of issues that never ran
        self._moved_reported: dict[tuple[str, str], tuple[StageRun, str]] = {}  # issue_moved said once
        # how this supervisor was started, for state.json's `command` (the CLI says)
        self._command = command or f"vik-tui run {self.workflow_path}"
        self.port, self.bind_address = 0, "127.0.0.1"  # the HTTP API's TCP listener, for state.json
        self._companions = companions.Companions()
        # which (issue, stage) completed for which state, kept across restarts (`completed`)
        self.completed = CompletedStore(self.layout.service_dir / COMPLETED_FILE)
        # issue id -> "waiting for plan to finish": its new state's stages wait for the old state's
        self.waiting: dict[str, str] = {}
        worker = workflow.worker
        # SSH workers: fixed for the supervisor's life (a reload that changes them applies after a restart)
        self.pool = (
            HostPool(worker, self.layout.workflow_dir, self.layout.service_dir / HOST_PINS_FILE)
            if worker is not None and worker.ssh_hosts
            else None
        )
        self._workspaces = Workspaces(self.layout, self.pool, lambda: self.workflow, self._check_host)
        self._hosts = (
            HostCoordination(self.pool, self._emit, self.log, self._dispatch) if self.pool is not None else None
        )
        self._attempts = Attempts(
            self._id,
            self.layout,
            self.workflow_path,
            self.registry,
            self._bus,
            lambda name: self._hosts.error(name) if self._hosts is not None else None,
            lambda: float(self.workflow.loop.cancel_grace_sec),
        )
        self._attempts.watch = self._on_agent_events
        self._notifier = notify.Notifier(lambda: self.workflow.notify, self.workflow_path, self.log)
        self._companions.add(lambda: notify.serve(self._notifier, self.subscribe))

    def add_companion(self, factory: companions.Factory) -> None:
        """A service that lives as long as `run()`, in its loop (the HTTP API): entered once the
        lock is held, exited after `supervisor_stopped`; its failures are logged, never fatal."""
        self._companions.add(factory)

    # -- subscription ------------------------------------------------------------------
    def subscribe(self, listener: ee.Listener) -> Callable[[], None]:
        return self._bus.subscribe(listener)

    def _emit(self, event: ee.EngineEvent) -> None:
        self._bus.emit(event)

    def log(self, level: ee.Level, message: str) -> None:
        """A `log` engine event (companions such as the HTTP API report through it)."""
        self._bus.log(level, message)

    # -- commands ----------------------------------------------------------------------
    def cancel(self, issue_id: str, stage: str) -> str:
        """Cancel a reserved, preparing, running or retry-waiting stage."""
        run = self.runs.get((issue_id, stage))
        if run is None:
            return f"no stage {stage} for issue {issue_id}"
        if run.status == RunStatus.RETRY_WAIT:
            run.clear_retry()
            run.status, run.reason = RunStatus.CANCELLED, "retry cancelled by user"
            self._emit(self._finished_event(run, None))
            self._persist_retries()
            return "retry cancelled"
        if not run.active:
            return f"{issue_id}/{stage} is not running ({run.status})"
        self._stop_run(run, StopCause.CANCEL, "cancelled by user")
        return "cancelling"

    def retry(self, issue_id: str, stage: str) -> str:
        """Run a stage again now, whatever its state, with a fresh attempt count."""
        run = self.runs.get((issue_id, stage))
        issue = self._issues.get(issue_id)
        if run is None or issue is None:
            return f"no stage {stage} for issue {issue_id}"
        if run.active:
            return f"{issue_id}/{stage} is already {run.status}"
        config = self.workflow.issue.stages.get(stage)
        if config is None:
            return f"stage {stage} is no longer in the workflow"
        run.clear_retry()
        self._completed_write(self.completed.forget, issue_id, stage)  # on purpose: it may run again
        ready, host = self._host_for(issue_id, self._host_load())
        if not ready:  # every usable host is full or down: dispatch starts it once one has room
            run.status, run.attempt, run.gave_up = RunStatus.RETRY_WAIT, 0, False
            run.reason = "waiting for an SSH host with room"
            self._persist_retries()
            return "queued: it starts once a host has room"
        self._start_run(issue, stage, config, attempt=1, previous=run, host=host)
        return "retrying"

    def poll_now(self) -> None:
        self._next_poll_at = None
        self._poll_requested.set()
        self._wake.set()

    def pause(self) -> None:
        self._paused = True
        self._intake_status = IntakeStatus.PAUSED
        self._emit(ee.IntakePaused())

    def resume(self) -> None:
        """Resume intake, and cancel a drain."""
        if self._draining and not self._stopping:
            self._draining = False
            self._emit(ee.DrainCancelled())
        self._paused = False
        self._intake_status = IntakeStatus.IDLE
        self._emit(ee.IntakeResumed())
        self._poll_requested.set()
        self._wake.set()
        if self._loop is not None:
            self._dispatch()

    def drain(self) -> str:
        """Start nothing new (no dispatch, no retry); once the running stages ended (their own
        timeouts still apply), stop. Pending retries stay in service/retries.jsonl. `resume`
        cancels it; `stop` ends it at once."""
        if self._stopping:
            return "the supervisor is already stopping"
        if self._draining:
            return f"already draining: {self._running_count()} running"
        self._draining = True
        self._emit(ee.DrainStarted(running=self._running_count()))
        self._drained()
        return f"draining: {self._running_count()} running; the supervisor exits when they end"

    def _running_count(self) -> int:
        return sum(1 for r in self.runs.values() if r.active)

    def _drained(self) -> None:
        """A drain with nothing left running is over: say so and stop."""
        if self._draining and not self._stopping and not any(r.active for r in self.runs.values()):
            kept = sum(1 for r in self.runs.values() if r.status == RunStatus.RETRY_WAIT)
            self._emit(ee.DrainFinished(retries_kept=kept))
            self.stop(DRAINED)

    def finish(self) -> None:
        """Stop polling, let running sessions and pending retries end, then `run()` returns."""
        self._finished_polling = True
        self._poll_requested.set()
        self._wake.set()

    def stop(self, reason: str = SHUTDOWN_REASON) -> None:
        """Begin a clean shutdown: stop every session (cancelled, with `reason`), then `run()` returns."""
        if not self._stopping:
            self._stop_reason = reason
            self._stopping = True
            self._intake_status = IntakeStatus.STOPPING
            self._stop_event.set()
            self._poll_requested.set()
            self._wake.set()

    # -- snapshot ----------------------------------------------------------------------
    def snapshot(self) -> EngineView:
        """A frozen view of everything the screen shows; cheap enough to take every frame."""
        now = self._now()
        pins = self.pool.pins if self.pool is not None else {}
        by_issue = views.runs_by_issue(self.runs.values(), list(self.workflow.issue.stages))
        issues = self._issue_views.build(self._listed, self._issues, by_issue, pins, now, self.waiting)
        tokens, rate_limits = views.usage(self.runs.values())
        return EngineView(
            workflow=str(self.workflow_path),
            name=self.workflow_path.parent.name + "/" + self.workflow_path.name,
            intake=IntakeView(
                status=self._intake_status,
                error=self._intake_error,
                iterations=self._iterations,
                max_iterations=self.workflow.loop.max_iterations,
                paused=self._paused,
                next_poll_in=None if self._next_poll_at is None else max(0.0, self._next_poll_at - now),
            ),
            stages=tuple(self.workflow.issue.stages),
            stage_states=frozenset(stage.when.state for stage in self.workflow.issue.stages.values()),
            running=len(self._active_issue_ids()),
            max_issue_concurrency=self.workflow.loop.max_issue_concurrency,
            tokens=tokens,
            rate_limits=rate_limits,
            issues=issues,
            hosts=self.pool.views(self._host_load()) if self.pool is not None else (),
            rejected=self._rejected,
            retries=views.retry_views(self.runs.values(), now),
            draining=self._draining,
            stopping=self._stopping,
            holds=self._holds(),
            budget=BudgetView(
                self._daily.used_today(),
                self.workflow.loop.budget.daily_tokens,
                self.workflow.loop.budget.session_tokens,
            ),
            stage_specs=tuple(
                StageSpec(name, stage.when.state, self._runtime(stage))
                for name, stage in self.workflow.issue.stages.items()
            ),
        )

    def _holds(self) -> tuple[HoldView, ...]:
        """What keeps new sessions from starting until a time (for the view and explain)."""
        wall = time.time()
        holds: list[HoldView] = []
        limit = self.workflow.loop.budget.daily_tokens
        if limit is not None and self._daily.spent(limit):
            midnight = next_utc_midnight()
            holds.append(
                HoldView(
                    HoldKind.BUDGET,
                    "daily",
                    midnight.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    max(0.0, midnight.timestamp() - wall),
                    f"daily token budget spent: {self._daily.used_today()} of {limit} tokens today (UTC)",
                )
            )
        for runtime in sorted(self._rate_limits.holds):
            hold = self._rate_limits.active(runtime, wall)
            if hold is not None:
                holds.append(HoldView(HoldKind.RATE_LIMIT, runtime, hold.until_iso, hold.until - wall, hold.reason))
        return tuple(holds)

    def _runtime(self, stage: StageConfig) -> str:
        agent = self.workflow.agents.get(stage.agent)
        return agent.runtime if agent is not None else "?"

    def workdir_of(self, issue_id: str) -> Path:
        """The issue's workspace on this machine (on an SSH host, see `place_of`)."""
        return self.layout.issue_workdir(issue_id)

    def place_of(self, issue_id: str) -> Place:
        """Where the issue lives (`Workspaces.place_of`)."""
        return self._workspaces.place_of(issue_id)

    def workspace_path(self, issue_id: str) -> str | Refused:
        """The issue's workspace path on this machine, or why there is none (an unsafe id)."""
        return self._workspaces.path(issue_id)

    async def shell_plan(self, issue_id: str) -> Terminal | Refused:
        """`s` in the UI: the user's shell in the issue's workspace (`ssh -t` on its host), or
        why there is none to open."""
        return self._workspaces.shell_plan(issue_id)

    async def workspace_diff(self, issue_id: str) -> str:
        """`d` in the UI: `git status` and the diff of the issue's workspace, wherever it is."""
        return await self._workspaces.diff(issue_id)

    async def takeover_plan(self, issue_id: str, session_uuid: str) -> Terminal | Refused:
        """How to reopen a session's agent interactively (`a` in the UI), or why it cannot be."""
        for run in self.runs.values():
            if run.issue_id != issue_id:
                continue
            for number, snap in enumerate(run.sessions, 1):
                if snap.session_uuid == session_uuid:
                    what = f"{issue_id}/{run.stage} #{number}"
                    try:  # in a thread: it reads the session file
                        return await asyncio.to_thread(
                            self._workspaces.takeover_plan,
                            issue_id,
                            what,
                            run.active,
                            run.config.agent,
                            snap.session_file,
                            snap.agent_session_id,
                        )
                    except TakeoverRefused as exc:
                        return Refused(str(exc))
        return Refused(f"no session {session_uuid} of issue {issue_id}")

    async def session_records(self, session_file: str, limit: int | None = None) -> list[AgentEvent]:
        """Replay a session file (for panes opened late or after a restart), off the loop."""
        return await asyncio.to_thread(read_session_records, session_file, limit)

    async def load_history(self) -> int:
        """Adopt session files left by an earlier run, so history survives restarts (read off
        the loop, before `run()`)."""
        return await asyncio.to_thread(history.adopt_sessions, self.layout, self.workflow, self.runs)

    # -- main loop ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until max_iterations cycles are done and all sessions ended, or until stop()."""
        self._loop = asyncio.get_running_loop()
        holder = {"pid": os.getpid(), "started_at": now_iso(), "cwd": os.getcwd(), "workflow": str(self.workflow_path)}
        if self._use_lock:
            self._lock.acquire(holder)  # raises AlreadyRunning
        self.layout.root.mkdir(parents=True, exist_ok=True)
        if self._use_lock:  # ours alone now: what a kill -9 mid atomic write left
            remove_service_temp_files(self.layout.service_dir)
        state = daemon.ServiceState.for_supervisor(self.layout, self._command, self.port, self.bind_address)
        daemon.write_state(self.layout.state_file, state)
        self._emit(ee.SupervisorStarted(workflow=str(self.workflow_path), root=str(self.layout.root), pid=os.getpid()))
        OWNER.set(Mark(self._id, "supervisor", "intake"))  # this task and every task it creates
        subreaper = set_subreaper(True)
        self._attempts.cgroups = Cgroups.open(self._id)  # one cgroup per stage, where v2 is writable
        reaper = Reaper() if subreaper else None
        reaping = asyncio.ensure_future(reaper.run()) if reaper else None
        watcher = health = None
        try:
            await self._companions.start(lambda message: self.log("error", message))
            self.completed.load()
            if self.completed.load_error:
                self.log("warning", f"{self.completed.load_error}; completed stages may run again")
            await self._recover()
            self._daily.adopt(*await asyncio.to_thread(DailyBudget.rebuild, self.layout.sessions_dir))
            self._restore_retries()
            watcher = asyncio.ensure_future(self._watch_config()) if self._watch else None
            if self.pool is not None and self._hosts is not None:
                self.pool.open()
                await self._hosts.check_all(list(self.pool.hosts))  # before the first dispatch
                left = self.recovery.remote if self.recovery is not None else []
                await self._hosts.recover(left, self._workspaces.place, float(self.workflow.loop.cancel_grace_sec))
                health = asyncio.ensure_future(self._hosts.watch(lambda: self._stopping))
            await self._loop_cycles()
            await self._drain()
        finally:
            if watcher:
                watcher.cancel()
            if health:
                health.cancel()
            for timer in self._timers.values():
                timer.cancel()
            await self._shutdown()
            if self.pool is not None:
                await self.pool.stop()
            self._attempts.write_pending_outcomes()
            await self._attempts.kill_leftovers(f"{self._id}/", "the supervisor")
            if self._attempts.cgroups is not None:
                self._attempts.cgroups.close()
            if reaping is not None and reaper is not None:
                reaping.cancel()
                reaper.reap_once()
            if subreaper:
                set_subreaper(False)
            self.registry.supervisor_stopped()
            self._emit(ee.SupervisorStopped(iterations=self._iterations))
            await self._companions.stop(lambda message: self.log("error", message))
            self._bus.close()
            daemon.remove_state(self.layout.state_file, os.getpid())  # vik removes it at a clean exit
            if self._use_lock:
                self._lock.release()
        return 0

    async def _recover(self) -> None:
        """Before any dispatch: what a supervisor killed with SIGKILL left behind (`recovery`)."""
        if not self._use_lock:
            return  # without the lock another supervisor may be running these stages
        try:
            self.recovery = report = await self.registry.sweep(float(self.workflow.loop.cancel_grace_sec))
            self.registry.supervisor_started(self._id, self.pool.control_dir if self.pool is not None else None)
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

    async def _loop_cycles(self) -> None:
        while not self._stopping and not self._finished_polling:
            if not self._paused:
                self._poll_requested.clear()  # a poll_now() during this cycle must not be lost
                await unless_stopped(self._stop_event, self._intake_cycle())  # a hung pull yields to stop()
                if self._stopping:
                    return
                max_iter = self.workflow.loop.max_iterations
                if max_iter is not None and self._iterations >= max_iter:
                    self._finished_polling = True
                    self._intake_status = IntakeStatus.DONE
                    self._next_poll_at = None
                    return
            await self._sleep_until_next_poll()
        if self._finished_polling:
            self._intake_status = IntakeStatus.DONE
            self._next_poll_at = None

    async def _sleep_until_next_poll(self) -> None:
        idle = float(self.workflow.issues.pull.idle_sec)
        self._next_poll_at = None if self._paused else self._now() + idle
        if not self._paused:
            self._intake_status = IntakeStatus.IDLE if self._intake_error is None else IntakeStatus.ERROR
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poll_requested.wait(), None if self._paused else idle)

    async def _drain(self) -> None:
        """After the last cycle: wait until every session ended and no retry is pending, and
        every attempt's task has finished its clean-up (a run is `completed` before its task
        has swept the host and dispatched what was waiting for its slot)."""
        while not self._stopping and any(
            r.status.cancellable or (r.task is not None and not r.task.done()) for r in self.runs.values()
        ):
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.workflow.loop.wait_ms / 1000)

    async def _shutdown(self) -> None:
        self._stopping = True
        for run in self.runs.values():
            run.clear_retry()
            if run.reconcile_handle:
                run.reconcile_handle.cancel()
            if run.active:
                self._stop_run(run, StopCause.SHUTDOWN, self._stop_reason)
        tasks = [r.task for r in self.runs.values() if r.task and not r.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- SSH worker hosts ----------------------------------------------------------------
    async def _check_host(self, name: str) -> bool:
        """The places' drop handler (`HostCoordination.check`)."""
        assert self._hosts is not None
        return await self._hosts.check(name)

    def _host_load(self) -> dict[str, int]:
        """Stage sessions preparing or running on each host now."""
        load: dict[str, int] = {}
        for run in self.runs.values():
            if run.host is not None and run.active:
                load[run.host] = load.get(run.host, 0) + 1
        return load

    def _host_for(self, issue_id: str, load: dict[str, int]) -> tuple[bool, str | None]:
        """(may start now, host) for the issue's next stage. No pool: always, on this machine."""
        if self._hosts is None:
            return True, None
        host = self._hosts.host_for(issue_id, load)
        return host is not None, host

    # -- intake ------------------------------------------------------------------------
    async def _intake_cycle(self) -> None:
        self._intake_status = IntakeStatus.POLLING
        self._emit(ee.IntakePolling())
        result = await intake.pull(self.workflow, self.layout)
        self._iterations += 1
        if not result.ok:
            self._intake_error = result.error
            self._intake_status = IntakeStatus.ERROR
            self._emit(
                ee.IntakeFailed(
                    error=result.error or "",
                    exit_code=result.exit_code,
                    stderr=result.stderr_tail[-1000:],
                    iteration=self._iterations,
                )
            )
            return
        self._intake_error = None
        self._pulled = True
        self._apply_intake(result)
        self._emit(ee.Intake(issues=len(result.issues), rejected=len(result.rejected), iteration=self._iterations))
        for item in result.rejected:
            self._emit(ee.IssueRejected(id=item.issue_id, index=item.index, reason=item.reason))
        hook, self.before_first_dispatch = self.before_first_dispatch, None
        if hook is not None:
            await hook()
        self._dispatch()

    def _apply_intake(self, result: PullResult) -> None:
        self._listed = [i.id for i in result.issues]
        self._issues.update((issue.id, issue) for issue in result.issues)
        self._rejected = tuple(RejectedView(index=r.index, id=r.issue_id, reason=r.reason) for r in result.rejected)
        self._completed_write(self.completed.seen, {i.id: i.state for i in result.issues})
        listed = set(self._listed)
        for run in self.runs.values():
            issue = self._issues.get(run.issue_id)
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
                # only a move out of the state lets it run again: an issue missing from one pull
                # (an empty or partial answer between two full ones) keeps its finished stages
                run.rerun_allowed = run.rerun_allowed or present
            elif run.status == RunStatus.RETRY_WAIT:
                run.clear_retry()
                run.status, run.reason = RunStatus.FAILED, f"{run.reason}; retry dropped: {reason}"
                run.rerun_allowed = True
                self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))
            elif run.active and not self.workflow.loop.reconcile:
                self._report_moved(run, issue.state if present and issue else None, reason)
            elif run.active and run.reconcile_handle is None and run.abort is None:
                grace = float(self.workflow.loop.reconcile_grace_sec)
                assert self._loop is not None
                run.reconcile_handle = self._loop.call_later(grace, self._reconcile_now, run, reason)
                self._emit(ee.ReconcilePending(issue=run.issue_id, stage=run.stage, reason=reason, grace_sec=grace))
        self._persist_retries()

    def _report_moved(self, run: StageRun, state: str | None, reason: str) -> None:
        """vik's rule (ADR 0003): a running stage is never stopped because the tracker changed;
        its agent is often the one that moved the issue. Said once per move, as information."""
        if self._moved_reported.get((run.issue_id, run.stage)) == (run, reason):
            return
        self._moved_reported[(run.issue_id, run.stage)] = (run, reason)
        self._emit(ee.IssueMoved(issue=run.issue_id, stage=run.stage, state=state, reason=reason))

    def _reconcile_now(self, run: StageRun, reason: str) -> None:
        run.reconcile_handle = None
        if run.active:
            self._stop_run(run, StopCause.RECONCILE, reason)

    # -- dispatch ----------------------------------------------------------------------
    def _active_issue_ids(self) -> set[str]:
        return {r.issue_id for r in self.runs.values() if r.active}

    def _dispatch(self) -> None:
        """docs/architecture.md §3 (dispatch): exact state match, stages in file order, reserve before any await."""
        if self._stopping or self._draining or self._budget_spent():
            return
        limit = self.workflow.loop.max_issue_concurrency
        active = self._active_issue_ids()
        load = self._host_load()
        for due in [r for r in self.runs.values() if r.status == RunStatus.RETRY_WAIT and r.retry_handle is None]:
            waiting = self._issues.get(due.issue_id)
            if waiting is None or (due.issue_id not in active and len(active) >= limit):
                continue
            config = self.workflow.issue.stages.get(due.stage)
            if config is None:  # removed by a reload since the retry was scheduled
                self._drop_retry(due, STAGE_REMOVED)
                continue
            if self._rate_held(config):
                continue
            ready, host = self._host_for(due.issue_id, load)
            if not ready:
                continue
            active.add(due.issue_id)
            self._start_run(waiting, due.stage, config, attempt=due.attempt + 1, previous=due, host=host)
        held: dict[str, str] = {}
        for issue_id in self._listed:
            issue = self._issues[issue_id]
            for stage_name, stage in self.workflow.issue.stages.items():
                if issue.state != stage.when.state:
                    continue
                run = self.runs.get((issue_id, stage_name))
                if run is not None and not (run.status.terminal and run.rerun_allowed):
                    continue  # active, waiting to retry, or finished while the issue kept this state
                if self.completed.holds(issue_id, stage_name, issue.state):  # before a restart, too
                    if run is None:  # shown (and retryable) as completed
                        run = StageRun(issue_id, stage_name, stage, status=RunStatus.COMPLETED, reason=WAITING_REASON)
                        self.runs[(issue_id, stage_name)] = run
                    run.rerun_allowed = False
                    continue
                busy = stages_of_another_state(self.runs.values(), issue_id, issue.state)
                if busy:  # one state at a time per workspace
                    held[issue_id] = waiting_text(busy)
                    continue
                if issue_id not in active and len(active) >= limit:
                    continue
                if self._rate_held(stage):
                    continue
                ready, host = self._host_for(issue_id, load)
                if not ready:
                    continue
                active.add(issue_id)
                self._start_run(issue, stage_name, stage, attempt=1, previous=run, host=host)
        for issue_id, text in held.items():
            if self.waiting.get(issue_id) != text:
                self.log("info", f"{issue_id} is now {self._issues[issue_id].state}: {text}")
        self.waiting = held

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
        if previous is not None and previous.status == RunStatus.RETRY_WAIT:
            self._persist_retries()  # before anything starts: a kill -9 from here on cannot run it twice
        self._emit(ee.StageReserved(issue=issue.id, stage=stage_name, attempt=attempt))
        run.task = asyncio.ensure_future(self._execute(run, issue))

    def _stop_run(self, run: StageRun, cause: StopCause, reason: str) -> None:
        if run.session is not None:
            run.session.stop(cause, reason)
            run.abort = run.abort or (cause, reason)  # a stop is under way (no second reconcile)
        elif run.abort is None:
            run.abort = (cause, reason)
            if run.task and cause == StopCause.SHUTDOWN:
                run.task.cancel()

    # -- one attempt -------------------------------------------------------------------
    async def _execute(self, run: StageRun, issue: Issue) -> None:
        """Sequence one attempt (`stages/attempt.py` does the work) and decide what its result
        means for the run."""
        workflow = self.workflow  # running sessions keep the configuration they started with
        try:
            attempt = self._attempts.new(
                issue,
                run.stage,
                run.config,
                run.attempt,
                run.host,
                workflow,
                lambda: self._workspaces.site(issue.id, run.host),
            )
        except (UnsafeIssueId, WorkspaceError) as exc:  # intake already filters these; defence in depth
            run.status, run.reason = RunStatus.FAILED, str(exc)
            self._emit(ee.IssueRejected(level="error", id=issue.id, index=None, reason=str(exc)))
            return
        snap = attempt.snap
        run.sessions.append(snap)
        try:
            attempt.record()
            run.status = RunStatus.PREPARING
            failure, prompt = await attempt.prepare()
            if failure is None and run.abort:
                failure = run.abort[1]
            if failure is not None:
                state = (
                    SessionState.CANCELLED if run.abort and run.abort[0].counts_as_cancelled else SessionState.FAILED
                )
                self._attempts.write_outcome(snap, state, failure)
                snap.stop_cause = run.abort[0] if run.abort else None
                await self._finish(run, attempt, ran_agent=False)
                return

            def started(session: StageSession) -> None:
                self._on_session_start(run, session)

            await attempt.run_agent(prompt, lambda session: setattr(run, "session", session), started)
            await self._finish(run, attempt, ran_agent=True)
        except asyncio.CancelledError:
            attempt.end(SessionState.CANCELLED, self._stop_reason)
            run.status, run.reason = RunStatus.CANCELLED, snap.reason
            self._emit(self._finished_event(run, snap))
            raise
        except StorageError as exc:  # a storage failure ends the stage, never the supervisor
            reason = str(exc)
            self.log("error", f"{issue.id}/{run.stage}: {reason}")
            attempt.end(SessionState.FAILED, reason)
            snap.stop_cause = StopCause.STORAGE
            run.status, run.reason = RunStatus.FAILED, reason
            self._emit(self._finished_event(run, snap, level="error"))
            self._schedule_retry(run, workflow)
        except Exception as exc:  # a bug must never take the loop down; record it instead
            reason = f"internal error: {type(exc).__name__}: {exc}"
            attempt.end(SessionState.FAILED, reason)
            run.status, run.reason = RunStatus.FAILED, reason
            self._emit(self._finished_event(run, snap, level="error"))
        finally:
            run.session = None
            await attempt.close()
            self._wake.set()
            if not self._stopping:
                self._dispatch()
            self._drained()

    def _on_session_start(self, run: StageRun, session: StageSession) -> None:
        snap = session.snap
        if self.runs.get((snap.issue_id, snap.stage)) is run and run.session is session:
            run.status = RunStatus.RUNNING  # only once the process exists, so a running stage has a pid
        self._emit(
            ee.StageStarted(
                issue=snap.issue_id,
                stage=snap.stage,
                attempt=snap.attempt,
                pid=snap.pid,
                session_file=snap.session_file,
                host=snap.host,
            )
        )

    async def _finish(self, run: StageRun, attempt: Attempt, ran_agent: bool) -> None:
        """What the attempt's outcome means: the run's status, and a retry for a failure that
        was not a cancel, a shutdown or a reconcile."""
        if run.reconcile_handle:
            run.reconcile_handle.cancel()
            run.reconcile_handle = None
        snap = attempt.snap
        if ran_agent:
            await attempt.after_run()
        run.status, run.reason = RunStatus(snap.state), snap.reason
        if run.status == RunStatus.COMPLETED:
            self._completed_write(self.completed.record, run.issue_id, run.stage, run.config.when.state)
        failed = run.status == RunStatus.FAILED
        runtime = self._runtime(run.config)
        if run.status == RunStatus.COMPLETED:
            self._rate_limits.succeeded(runtime)
        elif failed and ran_agent and (hold := self._rate_limits.failed(runtime, snap.reason)) is not None:
            self._say_hold(hold.runtime, None)
        self._emit(self._finished_event(run, snap, level="error" if failed else "info"))
        if failed and snap.stop_cause == StopCause.BUDGET:
            run.gave_up = True  # another attempt would spend as much again
            self._emit(ee.RetryGivenUp(issue=run.issue_id, stage=run.stage, attempts=run.attempt, reason=run.reason))
        elif failed and not (snap.stop_cause and snap.stop_cause.counts_as_cancelled):
            self._schedule_retry(run, attempt.workflow)

    def _finished_event(self, run: StageRun, snap: SessionFacts | None, level: ee.Level = "info") -> ee.StageFinished:
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
        if self._stopping:
            return
        if run.attempt >= policy.max_attempts:
            run.gave_up = True
            self._emit(ee.RetryGivenUp(issue=run.issue_id, stage=run.stage, attempts=run.attempt, reason=run.reason))
            return
        delay = backoff_delay(run.attempt, float(policy.backoff_sec), float(policy.max_backoff_sec))
        run.retry_not_before = None
        hold = self._rate_limits.active(self._runtime(run.config))
        if hold is not None and hold.until - time.time() > delay:  # not burnt against the same wall
            delay = round(hold.until - time.time(), 1)
            run.retry_not_before = f"after the {hold.runtime} rate limit resets"
        assert self._loop is not None
        run.wait_retry(self._loop, delay, self._retry_due)
        self._persist_retries()  # on disk before it is announced
        self._emit(
            ee.RetryScheduled(
                issue=run.issue_id, stage=run.stage, attempt=run.attempt + 1, delay_sec=delay, due_at=run.retry_due_at
            )
        )

    def _retry_due(self, run: StageRun) -> None:
        """The backoff is over: run it when the issue still shows the state and a slot is free."""
        run.retry_handle = None
        if self.runs.get((run.issue_id, run.stage)) is not run or run.status != RunStatus.RETRY_WAIT or self._stopping:
            return
        if not self._pulled or self._draining:  # stays pending: the first dispatch (or a resume) takes it
            return
        issue = self._issues.get(run.issue_id)
        if issue is None or run.issue_id not in self._listed or issue.state != run.config.when.state:
            run.status = RunStatus.FAILED
            run.rerun_allowed = True
            self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason="issue left the stage's state"))
            self._persist_retries()
            return
        self._dispatch()  # picks up due retries first, within max_issue_concurrency

    def _drop_retry(self, run: StageRun, reason: str) -> None:
        run.drop_retry(reason)
        self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason=reason))
        self._persist_retries()

    # -- durable retries (service/retries.jsonl) ---------------------------------------
    def _persist_retries(self) -> None:
        """Write the pending retries, so a restart (or a kill -9) keeps their schedule. Not
        while stopping: a shutdown clears the timers, not the retries."""
        if self._stopping or not self._use_lock:
            return
        wall = time.time()
        pending = [
            PendingRetry(
                r.issue_id,
                r.stage,
                r.attempt,
                r.retry_due_wall if r.retry_due_wall is not None else wall,
                r.reason,
                r.config.when.state,
                r.retry_not_before,
            )
            for r in self.runs.values()
            if r.status == RunStatus.RETRY_WAIT
        ]
        try:
            self._retry_store.save(pending)
        except OSError as exc:
            self.log(
                "error",
                f"cannot write {self._retry_store.path}: {describe_os_error(exc)}; pending retries would not"
                " survive a restart",
            )

    def _restore_retries(self) -> None:
        """Before the first dispatch: the retries an earlier supervisor left pending, with their
        due times and attempt numbers. One whose stage left the workflow (or now runs for
        another state) is dropped with a reason; one whose issue left is dropped by the first
        pull (`_apply_intake`)."""
        if not self._use_lock:
            return
        pending, warnings = self._retry_store.load()
        for warning in warnings:
            self.log("warning", warning)
        wall = time.time()
        for item in pending:
            config = self.workflow.issue.stages.get(item.stage)
            reason = None
            if config is None:
                reason = f"stage {item.stage} is no longer in the workflow"
            elif item.state is not None and item.state != config.when.state:
                reason = f"stage {item.stage} now runs for `{config.when.state}`, not `{item.state}`"
            if reason is not None or config is None:
                self._emit(ee.RetryDropped(level="warning", issue=item.issue, stage=item.stage, reason=reason or ""))
                continue
            run = StageRun(item.issue, item.stage, config, attempt=item.attempt, reason=item.error)
            earlier = self.runs.get((item.issue, item.stage))
            if earlier is not None:
                run.sessions = earlier.sessions
            delay = max(0.0, item.due_at - wall)
            assert self._loop is not None
            run.wait_retry(self._loop, delay, self._retry_due)
            run.retry_due_wall = item.due_at
            run.retry_not_before = item.not_before
            self.runs[(item.issue, item.stage)] = run
            self.log(
                "info",
                f"{item.issue}/{item.stage}: retry #{item.attempt + 1} kept from before the restart,"
                f" due in {delay:.0f}s ({run.retry_due_at})",
            )
        self._persist_retries()

    # -- budgets and rate limits -------------------------------------------------------
    def _on_agent_events(self, session: StageSession, records: list[AgentEvent]) -> None:
        """Every batch of a session's events: tokens for the budgets, rate-limit notices."""
        snap = session.snap
        run = self.runs.get((snap.issue_id, snap.stage))
        runtime = self._runtime(run.config) if run is not None else "?"
        for record in records:
            if isinstance(record, TokenUsage):
                self._daily.add(tokens_of(record.counts()))
            elif isinstance(record, RateLimit):
                found = self._rate_limits.observe(runtime, record)
                if found is not None:
                    self._say_hold(runtime, found[1])
        budget = self.workflow.loop.budget
        over = session_over(snap.tokens, budget.session_tokens)
        if over is not None:
            session.stop(StopCause.BUDGET, over)
        if budget.daily_tokens is not None:
            self._budget_spent()

    def _say_hold(self, runtime: str, note: str | None) -> None:
        """A runtime's new hold: said once (with the clamp, if any), and a dispatch when it ends."""
        hold = self._rate_limits.active(runtime)
        if hold is None:
            return
        if note:
            self.log("warning", f"{runtime} rate limit: {note}")
        if self._holds_said.get(runtime) is hold:
            return
        self._holds_said[runtime] = hold
        self._emit(ee.RateLimited(runtime=runtime, until=hold.until_iso, reason=hold.reason))
        self._dispatch_at(f"rate:{runtime}", hold.until - time.time() + 0.05)

    def _rate_held(self, stage: StageConfig) -> bool:
        return self._rate_limits.active(self._runtime(stage)) is not None

    def _budget_spent(self) -> bool:
        """The daily budget is spent: said once per day, and a dispatch at the next UTC midnight."""
        limit = self.workflow.loop.budget.daily_tokens
        if limit is None or not self._daily.spent(limit):
            return False
        if self._budget_said != self._daily.day:
            self._budget_said = self._daily.day
            midnight = next_utc_midnight()
            resumes = midnight.isoformat(timespec="seconds").replace("+00:00", "Z")
            self._emit(ee.BudgetSpent(used=self._daily.used_today(), limit=limit, resumes_at=resumes))
            self._dispatch_at("budget", midnight.timestamp() - time.time() + 1)
        return True

    def _dispatch_at(self, key: str, delay: float) -> None:
        if self._loop is None:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self._loop.call_later(max(0.0, delay), self._dispatch)

    # -- hot reload --------------------------------------------------------------------
    def _watched_paths(self) -> list[Path]:
        return reload.watched_paths(self.workflow, self.workflow_path, self.layout.workflow_dir)

    def reload(self) -> LoadResult:
        """Validate the files on disk; apply only a clean configuration."""
        result = load_workflow(self.workflow_path)
        if not result.ok or result.workflow is None:
            for diag in result.errors:
                self.log("error", f"config reload rejected: {diag.render(self.workflow_path.name)}")
            self._emit(ee.ConfigRejected(errors=tuple(result.errors)))
            return result
        new_layout = Layout.for_workflow(result.workflow, self.workflow_path)
        if new_layout.root != self.layout.root:
            self.log("warning", "workspace location changed; it applies after a restart")
        self.workflow = result.workflow
        self._emit(ee.ConfigReloaded(warnings=len(result.warnings)))
        for run in list(self.runs.values()):
            if run.status == RunStatus.RETRY_WAIT and run.stage not in self.workflow.issue.stages:
                self._drop_retry(run, STAGE_REMOVED)
        self._wake.set()
        return result

    async def _watch_config(self) -> None:
        await reload.watch(self._watched_paths, self.reload, self._stop_event, lambda: self._stopping, self.log)

    # -- helpers -----------------------------------------------------------------------
    def _completed_write(self, change: Callable[..., object], *args: object) -> None:
        """A change to the completed-work record; a failed write is said, never raised (the
        record stays right in memory; only a restart could run the stage again)."""
        try:
            change(*args)
        except OSError as exc:
            self.log("error", f"cannot write {self.completed.path}: {describe_os_error(exc)}")

    def _now(self) -> float:
        loop = self._loop or asyncio.get_event_loop()
        return loop.time()
