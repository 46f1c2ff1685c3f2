"""The Supervisor owns all scheduling state and makes the decisions: what runs next (dispatch,
acting on `gate`'s verdicts), what a result means (`_finish`), what a command does.

The work lives in rooms that never import it (docs/architecture.md §2): `listing` pulls,
`reconcile` applies a pull to the runs, `holds` counts budgets and rate limits, `retrying`
keeps the retry schedule on disk, `pacing` waits, `stages/attempt` runs one attempt,
`service/lifetime` holds the machine, `views` builds the `EngineView` of `snapshot()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from vik_tui.agents.events import AgentEvent
from vik_tui.config.loader import LoadResult
from vik_tui.config.render_child import kill_renders
from vik_tui.config.schema import StageConfig, Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine import gate, history, notify, reload, views
from vik_tui.engine.bus import EventBus
from vik_tui.engine.holds import Holds
from vik_tui.engine.intake import Issue, PullResult
from vik_tui.engine.listing import Listing
from vik_tui.engine.pacing import Pacing
from vik_tui.engine.places.coordination import HostCoordination
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.places.local import Place, WorkspaceError
from vik_tui.engine.processes.cgroups import SHELL_CGROUPS, Cgroups, RunCgroups
from vik_tui.engine.processes.descendants import OWNER, Mark, new_id
from vik_tui.engine.reconcile import Reconciler
from vik_tui.engine.retrying import Retries
from vik_tui.engine.service import companions
from vik_tui.engine.service.completed import COMPLETED_FILE, WAITING_REASON, CompletedStore
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.lifetime import Lifetime
from vik_tui.engine.service.logs import DailyLog
from vik_tui.engine.service.paths import Layout, UnsafeIssueId
from vik_tui.engine.service.rate_holds import HoldStore
from vik_tui.engine.service.recovery import RecoveryReport, Registry
from vik_tui.engine.service.retries import RetryStore
from vik_tui.engine.service.stop_signals import SHUTDOWN_REASON
from vik_tui.engine.stages.attempt import Attempt, Attempts, StorageError
from vik_tui.engine.stages.facts import StopCause
from vik_tui.engine.stages.offload import Readers
from vik_tui.engine.stages.replay import read_session_records
from vik_tui.engine.stages.runs import StageRun, started_event
from vik_tui.engine.stages.session import StageSession
from vik_tui.engine.view import EngineView, IntakeStatus, Refused, RunStatus, SessionState, Terminal
from vik_tui.engine.workspaces import Workspaces

STAGE_REMOVED = "stage removed"
DRAINED = "drained"  # the stop reason once a drain is over
HOST_PINS_FILE = "hosts.json"  # in the service directory: which SSH host each issue lives on
WATCH_AFTER_SEC = 1.0  # hot reload's start waits for the first intake cycle at most this long


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
        self.config_watched = asyncio.Event()  # set once hot reload watches the files (`reload.watch`)
        self._cycled = asyncio.Event()  # the first intake cycle is over (hot reload starts after it)
        self.runs: dict[tuple[str, str], StageRun] = {}
        # awaited once, between the first intake and its dispatch: a screen sets it so the list
        # is drawn before the stages it dispatches are spawned (and their agents take the CPU)
        self.before_first_dispatch: Callable[[], Awaitable[None]] | None = None
        self._bus = EventBus(DailyLog(self.layout.logs_dir))
        self._listing = Listing(self._emit)
        self._pace = Pacing(self._listing, lambda: self.workflow, self._now)
        holds_store = HoldStore(self.layout.service_dir) if lock else None
        self._holds = Holds(lambda: self.workflow, self._emit, self.log, self._dispatch, holds_store)
        store = RetryStore(self.layout.service_dir)
        self._retries = Retries(self.runs, store, lock, self._holds, lambda: self._pace.stopping, self._emit, self.log)
        self._id = new_id()  # every process we start carries a mark under it (`descendants`)
        self.registry = Registry(self.layout)
        lock_file = Lifetime.lock_for(workflow, self.workflow_path) if lock else None
        self._lifetime = Lifetime(self.layout, lock_file, self.registry, self._id, self.log)
        self.recovery: RecoveryReport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._issue_views = views.IssueViews()  # snapshot() reuses the views of issues that never ran
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
            self._grace,
        )
        self._attempts.watch = self._on_agent_events
        self._reconciler = Reconciler(self._stop_run, self._emit, self.log)
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
            self._emit(run.finished_event(None))
            self._retries.persist()
            return "retry cancelled"
        if not run.active:
            return f"{issue_id}/{stage} is not running ({run.status})"
        self._stop_run(run, StopCause.CANCEL, "cancelled by user")
        return "cancelling"

    def retry(self, issue_id: str, stage: str) -> str:
        """Run a stage again now, whatever its state, with a fresh attempt count."""
        run = self.runs.get((issue_id, stage))
        issue = self._listing.issues.get(issue_id)
        if run is None or issue is None:
            return f"no stage {stage} for issue {issue_id}"
        if run.active:
            return f"{issue_id}/{stage} is already {run.status}"
        config = self.workflow.issue.stages.get(stage)
        if config is None:
            return f"stage {stage} is no longer in the workflow"
        run.clear_retry()
        self._completed_write(self.completed.forget, issue_id, stage)  # on purpose: it may run again
        ready, host = self._room().host_for(issue_id)
        if not ready:  # every usable host is full or down: dispatch starts it once one has room
            run.status, run.attempt, run.gave_up = RunStatus.RETRY_WAIT, 0, False
            run.reason = "waiting for an SSH host with room"
            self._retries.persist()
            return "queued: it starts once a host has room"
        self._start_run(issue, stage, config, attempt=1, previous=run, host=host)
        return "retrying"

    def poll_now(self) -> None:
        self._listing.next_poll_at = None
        self._pace.poke()

    def pause(self) -> None:
        self._pace.paused = True
        self._listing.status = IntakeStatus.PAUSED
        self._emit(ee.IntakePaused())

    def resume(self) -> None:
        """Resume intake, and cancel a drain."""
        if self._pace.draining and not self._pace.stopping:
            self._pace.draining = False
            self._emit(ee.DrainCancelled())
        self._pace.paused = False
        self._listing.status = IntakeStatus.IDLE
        self._emit(ee.IntakeResumed())
        self._pace.poke()
        if self._loop is not None:
            self._dispatch()

    def drain(self) -> str:
        """Start nothing new (no dispatch, no retry); once the running stages ended (their own
        timeouts still apply), stop. Pending retries stay in service/retries.jsonl. `resume`
        cancels it; `stop` ends it at once."""
        if self._pace.stopping:
            return "the supervisor is already stopping"
        if self._pace.draining:
            return f"already draining: {self._running_count()} running"
        self._pace.draining = True
        self._emit(ee.DrainStarted(running=self._running_count()))
        self._drained()
        return f"draining: {self._running_count()} running; the supervisor exits when they end"

    def _running_count(self) -> int:
        return sum(1 for r in self.runs.values() if r.active)

    def _drained(self) -> None:
        """A drain with nothing left running is over: say so and stop."""
        if self._pace.draining and not self._pace.stopping and not any(r.active for r in self.runs.values()):
            kept = sum(1 for r in self.runs.values() if r.status == RunStatus.RETRY_WAIT)
            self._emit(ee.DrainFinished(retries_kept=kept))
            self.stop(DRAINED)

    def finish(self) -> None:
        """Stop polling, let running sessions and pending retries end, then `run()` returns."""
        self._pace.finished_polling = True
        self._pace.poke()

    def stop(self, reason: str = SHUTDOWN_REASON) -> None:
        """Begin a clean shutdown: stop every session (cancelled, with `reason`), then `run()` returns."""
        if not self._pace.stopping:
            self._pace.stop_reason = reason
            self._pace.stopping = True
            self._listing.status = IntakeStatus.STOPPING
            self._pace.stop_event.set()
            self._pace.poke()
            kill_renders()

    # -- snapshot ----------------------------------------------------------------------
    def snapshot(self) -> EngineView:
        """A frozen view of everything the screen shows; cheap enough to take every frame."""
        flags = views.Flags(paused=self._pace.paused, draining=self._pace.draining, stopping=self._pace.stopping)
        parts = (self._listing, self._issue_views, self.waiting, self.pool, self._holds)
        return views.engine_view(self.workflow, self.workflow_path, self.runs.values(), *parts, flags, self._now())

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
        return await self._workspaces.takeover(self.runs.values(), issue_id, session_uuid)

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
        self._lifetime.begin(self.workflow_path, self._command, self.port, self.bind_address)
        self._emit(ee.SupervisorStarted(workflow=str(self.workflow_path), root=str(self.layout.root), pid=os.getpid()))
        OWNER.set(Mark(self._id, "supervisor", "intake"))  # this task and every task it creates
        self._lifetime.start_reaping()
        self._attempts.cgroups = cgroups = Cgroups.open(self._id)  # one cgroup per stage, where v2 is writable
        self._attempts.readers = readers = Readers(log=self.log)  # started when a flood needs one
        if cgroups is not None:  # and one per pull command run
            SHELL_CGROUPS.set(RunCgroups(cgroups, "intake"))
        watcher = health = None
        try:
            await self._companions.start(lambda message: self.log("error", message))
            self.completed.load()
            if self.completed.load_error:
                self.log("warning", f"{self.completed.load_error}; completed stages may run again")
            control_dir, grace = self.pool.control_dir if self.pool is not None else None, self._grace()
            self.recovery = await self._lifetime.recover(control_dir, grace, self.runs.values())
            await self._holds.rebuild(self.layout.sessions_dir)
            self._holds.loop = self._loop  # a hold's end wakes dispatch
            self._holds.restore()  # before the first dispatch, which must wait for them
            self._retries.restore(self.workflow, self._loop, self._retry_due)
            watcher = asyncio.ensure_future(self._watch_config()) if self._watch else None
            if self._hosts is not None:  # before the first dispatch
                left = self.recovery.remote if self.recovery is not None else []
                health = await self._hosts.start(left, self._workspaces.place, self._grace, lambda: self._pace.stopping)
            await self._pace.cycles(self._intake_cycle)
            await self._pace.settle(self.runs.values())
        finally:
            if watcher:
                watcher.cancel()
            if health:
                health.cancel()
            self._holds.cancel_timers()
            await self._shutdown()
            await readers.close()
            if self.pool is not None:
                await self.pool.stop()
            self._attempts.write_pending_outcomes()
            await self._attempts.kill_leftovers(f"{self._id}/", "the supervisor")
            if cgroups is not None:
                await cgroups.kill()  # what a pull left running without its mark
                cgroups.close()
            self._lifetime.stop_reaping()
            self.registry.supervisor_stopped()
            self._emit(ee.SupervisorStopped(iterations=self._listing.iterations))
            await self._companions.stop(lambda message: self.log("error", message))
            self._bus.close()
            self._lifetime.end()
        return 0

    async def _shutdown(self) -> None:
        self._pace.stopping = True
        for run in self.runs.values():
            run.clear_retry()
            if run.reconcile_handle:
                run.reconcile_handle.cancel()
            if run.active:
                self._stop_run(run, StopCause.SHUTDOWN, self._pace.stop_reason)
        tasks = [r.task for r in self.runs.values() if r.task and not r.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- SSH worker hosts ----------------------------------------------------------------
    async def _check_host(self, name: str) -> bool:
        """The places' drop handler (`HostCoordination.check`)."""
        assert self._hosts is not None
        return await self._hosts.check(name)

    # -- intake ------------------------------------------------------------------------
    async def _intake_cycle(self) -> None:
        try:
            if not await self._listing.cycle(self.workflow, self.layout, self._apply_intake):
                return
            hook, self.before_first_dispatch = self.before_first_dispatch, None
            if hook is not None:
                await hook()
            self._dispatch()
        finally:
            self._cycled.set()

    def _apply_intake(self, result: PullResult) -> None:
        self._completed_write(self.completed.seen, {i.id: i.state for i in result.issues})
        self._reconciler.apply(
            self.runs.values(), self._listing.issues, set(self._listing.listed), self.workflow, self._loop
        )
        self._retries.persist()

    # -- dispatch ----------------------------------------------------------------------
    def _room(self) -> gate.Room:
        """Slots, rate limits and hosts as they stand, for one dispatch pass (`gate`)."""
        limit = self.workflow.loop.max_issue_concurrency
        return gate.room(list(self.runs.values()), limit, self._holds.rate_held, self._hosts)

    def _dispatch(self) -> None:
        """docs/architecture.md §3 (dispatch): exact state match, stages in file order, reserve
        before any await. What keeps each one waiting is `gate`'s answer."""
        if self._pace.stopping or self._pace.draining or self._holds.budget_spent():
            return
        room = self._room()
        stages = self.workflow.issue.stages
        for due in [r for r in self.runs.values() if r.status == RunStatus.RETRY_WAIT and r.retry_handle is None]:
            verdict = gate.retry(due, self._listing.issues, stages, room)
            if isinstance(verdict, gate.Go):
                room.active.add(due.issue_id)
                self._start_run(
                    self._listing.issues[due.issue_id], due.stage, verdict.config, due.attempt + 1, due, verdict.host
                )
            elif verdict.why == gate.Why.STAGE_REMOVED:
                self._retries.drop(due, STAGE_REMOVED)
        held: dict[str, str] = {}
        for issue_id in self._listing.listed:
            issue = self._listing.issues[issue_id]
            for stage_name, stage in stages.items():
                run = self.runs.get((issue_id, stage_name))
                verdict = gate.stage(issue, stage, run, self.runs.values(), self.completed, stage_name, room)
                if isinstance(verdict, gate.Go):
                    room.active.add(issue_id)
                    self._start_run(issue, stage_name, stage, attempt=1, previous=run, host=verdict.host)
                elif verdict.why == gate.Why.COMPLETED:
                    if run is None:  # shown (and retryable) as completed
                        run = StageRun(issue_id, stage_name, stage, status=RunStatus.COMPLETED, reason=WAITING_REASON)
                        self.runs[(issue_id, stage_name)] = run
                    run.rerun_allowed = False
                elif verdict.why == gate.Why.OTHER_STATE:  # one state at a time per workspace
                    held[issue_id] = verdict.text
        for issue_id, text in held.items():
            if self.waiting.get(issue_id) != text:
                self.log("info", f"{issue_id} is now {self._listing.issues[issue_id].state}: {text}")
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
            self._retries.persist()  # before anything starts: a kill -9 from here on cannot run it twice
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
            self._after_attempt()
            return
        except Exception as exc:  # a bug: the stage fails saying so (a reserved run was waited for forever)
            run.status, run.reason = RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            self.log("error", f"{issue.id}/{run.stage}: {run.reason}")
            self._after_attempt()
            return
        snap = attempt.snap
        run.sessions.append(snap)
        settled = False  # the attempt ran to its end: every process it started was waited for
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
                settled = True
                return

            def started(session: StageSession) -> None:
                self._on_session_start(run, session)

            await attempt.run_agent(prompt, lambda session: setattr(run, "session", session), started)
            await self._finish(run, attempt, ran_agent=True)
            settled = True
        except asyncio.CancelledError:
            attempt.end(SessionState.CANCELLED, self._pace.stop_reason)
            run.status, run.reason = RunStatus.CANCELLED, snap.reason
            self._emit(run.finished_event(snap))
            raise
        except StorageError as exc:  # a storage failure ends the stage, never the supervisor
            reason = str(exc)
            self.log("error", f"{issue.id}/{run.stage}: {reason}")
            attempt.end(SessionState.FAILED, reason)
            snap.stop_cause = StopCause.STORAGE
            run.status, run.reason = RunStatus.FAILED, reason
            self._emit(run.finished_event(snap, level="error"))
            self._schedule_retry(run, workflow)
        except Exception as exc:  # a bug must never take the loop down; record it instead
            reason = f"internal error: {type(exc).__name__}: {exc}"
            attempt.end(SessionState.FAILED, reason)
            run.status, run.reason = RunStatus.FAILED, reason
            self._emit(run.finished_event(snap, level="error"))
        finally:
            run.session = None
            await attempt.close(settled)
            self._after_attempt()

    def _after_attempt(self) -> None:
        """An attempt ended (or could not be made): wake the pace, dispatch what may start now."""
        self._pace.wake.set()
        if not self._pace.stopping:
            self._dispatch()
        self._drained()

    def _on_session_start(self, run: StageRun, session: StageSession) -> None:
        snap = session.snap
        if self.runs.get((snap.issue_id, snap.stage)) is run and run.session is session:
            run.status = RunStatus.RUNNING  # only once the process exists, so a running stage has a pid
        self._emit(started_event(snap))

    def _on_agent_events(self, session: StageSession, records: Sequence[AgentEvent]) -> None:
        """Every batch of a session's events: counted for the budgets and rate limits; a
        session over its own token budget is stopped."""
        holds = self._holds
        if holds.idle_for(records):
            return
        snap = session.snap
        run = self.runs.get((snap.issue_id, snap.stage))
        over = holds.count(lambda: holds.runtime(run.config) if run is not None else "?", records, snap.tokens)
        if over is not None:
            session.stop(StopCause.BUDGET, over)
        self._holds.check_daily()

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
        runtime = self._holds.runtime(run.config)
        if run.status == RunStatus.COMPLETED:
            self._holds.succeeded(runtime)
        elif failed and ran_agent and (hold := self._holds.rate_limits.failed(runtime, snap.reason)) is not None:
            self._holds.say_hold(hold.runtime, None)
        self._emit(run.finished_event(snap, level="error" if failed else "info"))
        if failed and snap.stop_cause == StopCause.BUDGET:
            run.gave_up = True  # another attempt would spend as much again
            self._emit(ee.RetryGivenUp(issue=run.issue_id, stage=run.stage, attempts=run.attempt, reason=run.reason))
        elif failed and not (snap.stop_cause and snap.stop_cause.counts_as_cancelled):
            self._schedule_retry(run, attempt.workflow)

    # -- retries -----------------------------------------------------------------------
    def _schedule_retry(self, run: StageRun, workflow: Workflow) -> None:
        assert self._loop is not None
        self._retries.schedule(run, workflow, self._loop, self._retry_due)

    def _retry_due(self, run: StageRun) -> None:
        """The backoff is over: run it when the issue still shows the state and a slot is free."""
        run.retry_handle = None
        pace = self._pace
        if self.runs.get((run.issue_id, run.stage)) is not run or run.status != RunStatus.RETRY_WAIT or pace.stopping:
            return
        if not self._listing.pulled or pace.draining:  # stays pending: the first dispatch (or a resume) takes it
            return
        issue = self._listing.issues.get(run.issue_id)
        if issue is None or run.issue_id not in self._listing.listed or issue.state != run.config.when.state:
            run.status = RunStatus.FAILED
            run.rerun_allowed = True
            self._emit(ee.RetryDropped(issue=run.issue_id, stage=run.stage, reason="issue left the stage's state"))
            self._retries.persist()
            return
        self._dispatch()  # picks up due retries first, within max_issue_concurrency

    # -- hot reload --------------------------------------------------------------------
    def _watched_paths(self) -> list[Path]:
        return reload.watched_paths(self.workflow, self.workflow_path, self.layout.workflow_dir)

    def reload(self) -> LoadResult:
        """Validate the files on disk; apply only a clean configuration."""
        result = reload.load_checked(self.workflow_path, self.layout.root, self._emit, self.log)
        if not result.ok or result.workflow is None:
            return result
        self.workflow = result.workflow
        self._emit(ee.ConfigReloaded(warnings=len(result.warnings)))
        for run in list(self.runs.values()):
            if run.status == RunStatus.RETRY_WAIT and run.stage not in self.workflow.issue.stages:
                self._retries.drop(run, STAGE_REMOVED)
        self._pace.wake.set()
        return result

    async def _watch_config(self) -> None:
        # after the first pull and dispatch (or WATCH_AFTER_SEC): watchfiles' import, in the
        # watcher's thread, would take the GIL from them
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cycled.wait(), WATCH_AFTER_SEC)
        await reload.watch(
            self._watched_paths,
            self.reload,
            self._pace.stop_event,
            lambda: self._pace.stopping,
            self.log,
            self.config_watched.set,
        )

    # -- helpers -----------------------------------------------------------------------
    def _completed_write(self, change: Callable[..., object], *args: object) -> None:
        """A change to the completed-work record; a failed write is said, never raised (the
        record stays right in memory; only a restart could run the stage again)."""
        try:
            change(*args)
        except OSError as exc:
            self.log("error", f"cannot write {self.completed.path}: {describe_os_error(exc)}")

    def _grace(self) -> float:
        return float(self.workflow.loop.cancel_grace_sec)

    def _now(self) -> float:
        loop = self._loop or asyncio.get_event_loop()
        return loop.time()
