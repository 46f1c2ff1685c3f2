"""The process half of one stage attempt: record it for crash recovery, prepare the workspace,
run the hooks, render the prompt, run the agent's session, write an outcome that could not be
written, and kill what the attempt left behind.

It never touches a `StageRun`: the Supervisor sequences these steps, holds the run, and decides
what each result means (retry, give up, cancel). `Attempts` holds what every attempt shares
(the registry, the event bus, outcomes waiting for disk space); `Attempt` is one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vik_tui.agents.events import AgentEvent
from vik_tui.agents.registry import adapter_for
from vik_tui.config.schema import StageConfig, Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.bus import EventBus
from vik_tui.engine.clock import now_iso
from vik_tui.engine.intake import Issue
from vik_tui.engine.places.local import Place, WorkspaceError
from vik_tui.engine.places.remote import RemoteAgent, RemotePlace
from vik_tui.engine.processes.cgroups import SHELL_CGROUPS, Cgroups, RunCgroups
from vik_tui.engine.processes.descendants import OWNER, Mark, describe_killed, kill_marked
from vik_tui.engine.processes.watcher import waited_for
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.paths import Layout, resolve_from
from vik_tui.engine.service.recovery import Entry, Registry
from vik_tui.engine.stages import templates
from vik_tui.engine.stages.creation import CreationRecords, set_aside_name
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits, StopCause, write_outcome_only
from vik_tui.engine.stages.hooks import HookResult, run_hook
from vik_tui.engine.stages.offload import Readers, RecordLines
from vik_tui.engine.stages.outcome_view import TemplateOutcome
from vik_tui.engine.stages.prompt_file import PromptFileError, read_prompt_file
from vik_tui.engine.stages.session import StageSession
from vik_tui.engine.uuid7 import uuid7
from vik_tui.engine.view import SessionState


@dataclass(frozen=True, slots=True)
class Site:
    """Where one attempt works: its place (this machine or an SSH host), the workspace path as
    processes there see it, and the workflow root there (`workspace_root` in templates)."""

    place: Place
    workdir: str
    root: str


class StorageError(Exception):
    """A write the engine needs failed; the message names what and the OS error."""

    def __init__(self, what: str, exc: OSError) -> None:
        super().__init__(f"{what}: {describe_os_error(exc)}")


class Attempts:
    """What every attempt of one supervisor shares: where files go, the crash-recovery registry,
    the event bus, the workspaces being created, and outcomes a full disk kept out of files."""

    def __init__(
        self,
        supervisor_id: str,
        layout: Layout,
        workflow_path: Path,
        registry: Registry,
        bus: EventBus,
        host_error: Callable[[str], str | None],
        grace_sec: Callable[[], float],
    ) -> None:
        self.grace_sec = grace_sec  # the current workflow's cancel_grace_sec (a reload changes it)
        self.supervisor_id = supervisor_id
        self.layout = layout
        self.workflow_path = workflow_path
        self.registry = registry
        self.bus = bus
        self.host_error = host_error
        # the Supervisor's look at every batch of agent events (budgets, rate limits)
        self.watch: Callable[[StageSession, Sequence[AgentEvent]], None] | None = None
        self.entries: dict[str, Entry] = {}  # session uuid -> its registry entry, while it runs
        self.unwritten: dict[str, SessionFacts] = {}  # session files whose outcome is not written yet
        # issue id -> after_create of a new workspace: every stage of the issue waits for it
        self.workspace_ready: dict[str, asyncio.Future[str | None]] = {}
        self.creations = CreationRecords(layout.service_dir)  # after_create begun and not finished
        self.cgroups: Cgroups | None = None  # set while the supervisor runs, where cgroup v2 is writable
        self.readers: Readers | None = None  # reader processes for floods, while the supervisor runs

    def write_outcome(self, snap: SessionFacts, state: SessionState, reason: str) -> None:
        """`write_outcome_only`, except that a failed write is reported, not raised: the snapshot
        still ends, and the next start gives the file its outcome (`recovery`)."""
        try:
            write_outcome_only(snap, state, reason)
        except OSError as exc:
            snap.state, snap.reason = state, reason
            self.keep_unwritten(snap)
            self.bus.log("error", f"cannot write the outcome of {snap.session_file}: {describe_os_error(exc)}")

    def keep_unwritten(self, snap: SessionFacts) -> None:
        """An outcome a full disk kept out of its session file: written later by this process
        (`write_pending_outcomes`), and kept in the attempt's registry entry (in place, no new
        block) so that the next start writes it, not `interrupted`, if this process dies first."""
        self.unwritten[snap.session_file] = snap
        entry = self.entries.get(snap.session_uuid)
        if entry is not None and snap.state is not None:
            with contextlib.suppress(OSError):
                self.registry.note_outcome(entry, str(snap.state), snap.reason or "")

    def write_pending_outcomes(self) -> None:
        """Outcomes a full disk kept out of their files: try again (a new stage starts, or the
        supervisor stops). What still fails is left to the next start's sweep (`recovery`)."""
        for path, snap in list(self.unwritten.items()):
            try:
                write_outcome_only(snap, snap.state, snap.reason or "")
            except OSError:
                return
            del self.unwritten[path]
            self.registry.forget(snap.session_uuid)

    async def kill_leftovers(
        self, prefix: str, owner: str, site: Site | None = None, *, apart: Collection[int] = ()
    ) -> list[int]:
        """Kill what is left carrying a mark under `prefix` (`setsid` ones too), here and on the
        issue's SSH host; say so. `apart`: children of other scopes, not looked into
        (`find_marked`)."""
        grace = self.grace_sec()
        killed = await kill_marked([prefix], grace, ours=True, apart=apart)
        if killed:
            pids = describe_killed(killed)
            self.bus.log("warning", f"killed {len(killed)} process(es) left running by {owner}: pid {pids}")
        if site is not None and site.place.host is not None:
            remote = await site.place.sweep(prefix, grace)
            if remote:
                pids = describe_killed(remote)
                self.bus.log(
                    "warning",
                    f"killed {len(remote)} process(es) left running by {owner} on {site.place.host}: pid {pids}",
                )
        return killed

    def new(
        self,
        issue: Issue,
        stage: str,
        config: StageConfig,
        number: int,
        host: str | None,
        workflow: Workflow,
        site: Callable[[], Site],
    ) -> Attempt:
        """A fresh attempt with its own session uuid and file. Raises UnsafeIssueId for an id
        that escapes the sessions directory, WorkspaceError when its host cannot be used."""
        session_uuid = str(uuid7())
        session_file = self.layout.session_file(issue.id, stage, session_uuid)
        return Attempt(self, issue, stage, config, number, workflow, site(), session_file, session_uuid, host)


class Attempt:
    """One attempt of one stage of one issue, in the order the Supervisor calls it: `record`,
    `prepare`, `run_agent`, `after_run`, and `close` whatever happened."""

    def __init__(
        self,
        shared: Attempts,
        issue: Issue,
        stage: str,
        config: StageConfig,
        number: int,
        workflow: Workflow,
        site: Site,
        session_file: Path,
        session_uuid: str,
        host: str | None,
    ) -> None:
        self.shared = shared
        self.issue = issue
        self.stage = stage
        self.config = config
        self.workflow = workflow  # running sessions keep the configuration they started with
        self.site = site
        self.session_uuid = session_uuid
        self.snap = SessionFacts(issue.id, stage, number, session_uuid, str(session_file), host=host)
        self.mark = Mark(shared.supervisor_id, session_uuid, "stage")
        self.shells: RunCgroups | None = None  # the cgroups of its hooks and exec() runs, where writable
        self.entry = Entry(session_uuid, str(session_file), issue.id, stage, number, self.mark.scope_prefix, host=host)

    @property
    def label(self) -> str:
        return f"{self.issue.id}/{self.stage}"

    def record(self) -> None:
        """Durable before any process of the attempt starts (`recovery`); marks this task's
        processes as the attempt's. Raises StorageError."""
        self.shared.write_pending_outcomes()
        OWNER.set(self.mark)  # this task's hooks and exec() runs are marked as the attempt's
        if self.shared.cgroups is not None:  # and run in cgroups of the attempt's
            self.shells = RunCgroups(self.shared.cgroups, f"{self.session_uuid}-shell")
            SHELL_CGROUPS.set(self.shells)
        try:
            self.shared.registry.record(self.entry)
        except OSError as exc:
            raise StorageError(f"cannot record the stage in {self.shared.registry.directory}", exc) from exc
        self.shared.entries[self.session_uuid] = self.entry

    async def prepare(self) -> tuple[str | None, str]:
        """Workspace, hooks and prompt. Returns (failure reason or None, rendered prompt)."""
        site, config = self.site, self.config
        hooks_timeout = float(self.workflow.loop.hook_timeout_sec)
        context = self._context()
        failure = await self._workspace(context)
        if failure is not None:
            return failure, ""
        if config.hooks.before_run:
            result = await self._hook("before_run", config.hooks.before_run, context, hooks_timeout)
            if not result.ok:
                return result.summary, ""
        try:
            source = config.prompt
            if source is None:
                prompt_path = resolve_from(self.shared.layout.workflow_dir, config.prompt_file or "")
                source = await read_prompt_file(prompt_path)  # off the loop, bounded, regular files only
            # exec() runs in the supervisor's own directory, as vik runs it in its process's; on an
            # SSH host there is no such directory: it runs in the issue's workspace there
            exec_dir = Path.cwd() if site.place.host is None else site.workdir
            prompt = await templates.render_prompt(
                source, context, exec_dir, f"stage {self.stage} prompt", shell=site.place.shell
            )
        except (OSError, UnicodeDecodeError, PromptFileError) as exc:
            return f"cannot read prompt file: {exc}", ""
        except templates.TemplateError as exc:
            return f"prompt render failed: {exc}", ""
        return None, prompt

    async def run_agent(
        self,
        prompt: str,
        on_session: Callable[[StageSession], None],
        on_start: Callable[[StageSession], None],
    ) -> None:
        """Run the agent's session to its end (the snapshot holds the outcome). `on_session` is
        told the session before it starts (so it can be stopped), `on_start` once the agent
        process exists. Raises StorageError when the session file cannot even be opened."""
        workflow, site = self.workflow, self.site
        agent = workflow.agents[self.config.agent]
        if site.place.host is None:  # a relative command path is the workflow's, here; on a host, the workspace's
            agent = agent.resolved(self.shared.layout.workflow_dir)
        adapter = adapter_for(agent.runtime)
        loop = workflow.loop
        spawn = site.place.agent(adapter.build_command(agent), site.workdir, self.mark.child("agent"))

        def started(session: StageSession) -> None:
            self._on_start(session)
            on_start(session)

        session = StageSession(
            self.snap,
            spawn.argv,
            spawn.cwd,
            prompt,
            adapter.new_mapper(),
            SessionLimits(float(loop.stage_timeout_sec), float(loop.stall_timeout_sec), float(loop.cancel_grace_sec)),
            on_events=self._on_events,
            env=spawn.env,
            executable_label=agent.executable,
            on_start=started,
            remote=(
                RemoteAgent(site.place, self.mark.child("agent").value, self.shared.host_error)
                if isinstance(site.place, RemotePlace)
                else None
            ),
            cgroup=(
                self.shared.cgroups.stage(self.snap.session_uuid)
                if self.shared.cgroups is not None and site.place.host is None
                else None
            ),
            readers=self.shared.readers,
        )
        on_session(session)
        snap = self.snap
        try:
            await session.run()
        except OSError as exc:  # the session file cannot even be opened
            raise StorageError(f"cannot write the session file {snap.session_file}", exc) from exc
        if session.outcome_unwritten:
            self.shared.keep_unwritten(snap)
        if snap.stop_cause == StopCause.STORAGE:
            self.shared.bus.log("error", f"{self.label}: {snap.reason} ({snap.session_file}); the agent was stopped")

    async def after_run(self) -> None:
        """The `after_run` hook, after a session that got as far as the agent and was not
        cancelled or shut down; it sees the outcome as `issue.outcome`."""
        if self.snap.stop_cause in (StopCause.CANCEL, StopCause.SHUTDOWN) or not self.config.hooks.after_run:
            return
        context = self._context()
        context["issue"]["outcome"] = TemplateOutcome.of(self.snap).as_context()
        await self._hook("after_run", self.config.hooks.after_run, context, float(self.workflow.loop.hook_timeout_sec))

    def end(self, state: SessionState, reason: str) -> None:
        """Give the session its outcome, unless it has one already."""
        if not self.snap.finished:
            self.shared.write_outcome(self.snap, state, reason)

    async def close(self, settled: bool = False) -> None:
        """Whatever the attempt started and left (a hook's or the agent's `setsid` children),
        and its registry entry once its outcome is in the file. `settled`: it ran to its end
        (no exception, no cancel), so every process it started was waited for and the
        children the loop still waits for are other attempts' (`kill_leftovers`)."""
        shared = self.shared
        own = {self.snap.pid} if self.snap.pid is not None else set()
        apart = waited_for() - own if settled else frozenset()
        await asyncio.shield(shared.kill_leftovers(self.mark.scope_prefix, self.label, self.site, apart=apart))
        if self.shells is not None:  # what a hook left running without its mark (`env -i`)
            killed = await asyncio.shield(self.shells.kill())
            if killed:
                shared.bus.log(
                    "warning",
                    f"killed {len(killed)} process(es) left running by {self.label}: pid {describe_killed(killed)}",
                )
        shared.entries.pop(self.session_uuid, None)
        if self.snap.finished and self.snap.session_file not in shared.unwritten:
            shared.registry.forget(self.session_uuid)  # else the next start's sweep gives it an outcome

    # -- internals ---------------------------------------------------------------------
    def _context(self) -> dict[str, Any]:
        return templates.build_context(
            self.issue.template_fields(),
            self.stage,
            self.site.workdir,
            self.site.root,
            self.shared.workflow_path,
        )

    async def _workspace(self, context: dict[str, Any]) -> str | None:
        """Create the issue's workspace and run after_create once, before any stage of the
        issue goes on: a sibling stage dispatched meanwhile waits for the same hook (a slow
        `git clone` must finish first) and fails with it. Returns the failure, if any."""
        issue_id = self.issue.id
        ready_by_issue = self.shared.workspace_ready
        pending = ready_by_issue.get(issue_id)
        if pending is not None:
            return await asyncio.shield(pending)
        place = self.site.place
        after_create = self.workflow.issue.hooks.after_create
        ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        ready_by_issue[issue_id] = ready
        failure: str | None = "workspace preparation was interrupted"
        created = False
        creations = self.shared.creations
        try:
            if after_create:  # a kill -9 during an earlier after_create left a half-made workspace
                await self._set_aside_unfinished(place)
                creations.begin(issue_id)
            created = await place.ensure_workdir(issue_id)  # the boundary is checked there too
            if created and after_create:
                hooks_timeout = float(self.workflow.loop.hook_timeout_sec)
                result = await self._hook("after_create", after_create, templates.without_stage(context), hooks_timeout)
                failure = None if result.ok else result.summary
            else:
                failure = None
            if failure is None:
                creations.finish(issue_id)
        except WorkspaceError as exc:
            failure = str(exc)
        except OSError as exc:
            failure = f"cannot record after_create in {creations.directory}: {describe_os_error(exc)}"
        finally:
            if failure is not None and created:  # failed or interrupted: the next attempt creates it afresh
                with contextlib.suppress(Exception):
                    await asyncio.shield(place.remove_workdir(issue_id))
            del ready_by_issue[issue_id]
            ready.set_result(failure)
        return failure

    async def _set_aside_unfinished(self, place: Place) -> None:
        """`creation`: the workspace of an after_create that never finished is renamed, not used."""
        issue_id = self.issue.id
        began = self.shared.creations.began_at(issue_id)
        if began is None:
            return
        reason = f"after_create began at {began} and did not finish (the supervisor was killed)"
        moved = await place.set_aside_workdir(issue_id, set_aside_name(issue_id), reason)
        if moved is not None:
            self.shared.bus.log(
                "warning", f"{issue_id}: {reason}; the workspace was set aside as {moved} and is made again"
            )

    async def _hook(self, name: str, source: str, context: dict[str, Any], timeout: float) -> HookResult:
        try:
            script = await templates.render_async(source, context, f"hook {name}")
        except templates.TemplateError as exc:
            result = HookResult(name, False, None, "", "", error=str(exc))
        else:
            result = await run_hook(
                name,
                script,
                self.site.workdir,
                timeout,
                grace_sec=self.shared.grace_sec(),
                shell=self.site.place.shell,
            )
        self.shared.bus.emit(
            ee.HookFinished(
                level="info" if result.ok else "error",
                issue=self.issue.id,
                stage=self.stage,
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
            self.shared.bus.log("warning", f"{self.label}: {result.note}")
        return result

    def _on_start(self, session: StageSession) -> None:
        """Before the session reads the agent's first byte: the agent's pid into the registry."""
        snap = session.snap
        entry = self.shared.entries.get(snap.session_uuid)
        if entry is not None and snap.pid is not None:
            try:
                self.shared.registry.agent_started(entry, snap.pid)
            except OSError as exc:
                reason = f"cannot record the agent in {self.shared.registry.directory}: {describe_os_error(exc)}"
                self.shared.bus.log("error", f"{snap.issue_id}/{snap.stage}: {reason}")
                session.stop(StopCause.STORAGE, reason)

    def _on_events(self, session: StageSession, records: Sequence[AgentEvent], lines: bytes) -> None:
        snap = session.snap
        shared = self.shared
        # a reader's batch: its events are decoded on demand; it carries the few the budget count needs
        handed = records if isinstance(records, RecordLines) else None
        if shared.watch is not None:
            shared.watch(session, handed.counted if handed is not None else records)
        if not shared.bus.listened:
            return
        shared.bus.emit(
            ee.AgentEvents(
                # stamped when its records were read (they are handed on at once): at a slow
                # pace a batch is a line, and the clock was read for it already
                ts=handed.ts if handed is not None else records[-1].ts or now_iso(),
                issue=snap.issue_id,
                stage=snap.stage,
                attempt=snap.attempt,
                session_file=snap.session_file,
                records=records,
                lines=lines,
            )
        )
