"""An SSH worker host as an issue's place: every workspace action becomes one `ssh` to it.

Paths and arguments are quoted for the remote shell, and the workspace boundary is checked
there (`pwd -P` of the workspace must lie under that of the root). Whatever a run starts on
the host carries its mark (`ssh.REMOTE_MARK_VAR`), so a stop, a timeout or the end of a stage
sweeps the host by mark: the whole group and anything that left it.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from vik_tui.config.ids import unsafe_id_reason
from vik_tui.config.schema import Workflow
from vik_tui.engine.places.hosts import Host, remote_issues_dir
from vik_tui.engine.places.local import SET_ASIDE_DIR, AgentSpawn, WorkspaceError
from vik_tui.engine.places.ssh import (
    CHECK_TIMEOUT_SEC,
    SSH_FAILED,
    exec_line,
    last_line,
    remote_quote,
    remote_script,
    run_remote,
    sweep_script,
)
from vik_tui.engine.places.workspace_tools import diff_report
from vik_tui.engine.processes.descendants import OWNER, Mark
from vik_tui.engine.processes.proc import OUTPUT_TAIL_BYTES, ShellRun
from vik_tui.engine.view import Terminal

# exit codes of the workspace scripts
_EXISTED, _CREATED, _ABSENT, _OUTSIDE = 0, 2, 3, 4

# told when an `ssh` exited 255: the pool checks the host and reports what it finds
DropHandler = Callable[[str], Awaitable[bool]]


class RemotePlace:
    """One issue's host. `host` must have passed a check (its $HOME is known)."""

    def __init__(self, host: Host, workflow: Workflow, workflow_path: Path, on_drop: DropHandler) -> None:
        if host.home is None:
            raise WorkspaceError(f"host {host.name} has not been reached yet")
        self.host: str | None = host.name  # the Place protocol's (None there means this machine)
        self.name = host.name  # the same, typed as the str it always is here
        self.target = host.target
        self.root = remote_issues_dir(workflow, workflow_path, host.home)
        self.on_drop = on_drop

    def workdir(self, issue_id: str) -> str:
        reason = unsafe_id_reason(issue_id)
        if reason:
            raise WorkspaceError(reason)
        return str(self.root / issue_id)

    # -- the workspace ---------------------------------------------------------------------
    def _ensure_script(self, issue_id: str) -> str:
        """Create the workspace unless it exists, then check that it lies inside the root, all
        in one channel: exit 0 (it existed), 2 (created now), 4 (outside the root), 5 (error)."""
        root, workdir = remote_quote(str(self.root)), remote_quote(self.workdir(issue_id))
        return "\n".join(
            [
                f"if [ -d {workdir} ]; then made={_EXISTED}; else mkdir -p -- {workdir} || exit 5; made={_CREATED}; fi",
                f"real_root=$(cd -- {root} && pwd -P) && real=$(cd -- {workdir} && pwd -P) || exit 5",
                'case "$real" in "$real_root"/*) exit $made;; esac',
                f'echo "workspace would resolve outside the root ($real)" >&2; exit {_OUTSIDE}',
            ]
        )

    async def ensure_workdir(self, issue_id: str) -> bool:
        run = await self._run(self._ensure_script(issue_id), CHECK_TIMEOUT_SEC)
        if run.returncode in (_EXISTED, _CREATED):
            return run.returncode == _CREATED
        detail = last_line(run.stderr) or f"exit {run.returncode}"
        if run.returncode == SSH_FAILED and not await self.on_drop(self.name):
            raise WorkspaceError(f"host {self.name} unreachable: {detail}")
        raise WorkspaceError(f"workspace on {self.name}: {detail}")

    async def remove_workdir(self, issue_id: str) -> None:
        await self._run(f"rm -rf -- {remote_quote(self.workdir(issue_id))}", CHECK_TIMEOUT_SEC)

    async def set_aside_workdir(self, issue_id: str, name: str, reason: str) -> str | None:
        workdir = remote_quote(self.workdir(issue_id))
        aside = str(self.root.parent / SET_ASIDE_DIR / name)
        note = remote_quote(aside + ".reason")
        script = (
            f"[ -d {workdir} ] || exit 3; mkdir -p -- {remote_quote(str(self.root.parent / SET_ASIDE_DIR))} && "
            f"printf '%s\\n' {remote_quote(reason)} > {note} && mv -- {workdir} {remote_quote(aside)}"
        )
        run = await self._run(script, CHECK_TIMEOUT_SEC)
        if run.returncode == 3:
            return None
        if run.returncode != 0:
            raise WorkspaceError(
                f"cannot set the workspace aside on {self.name}: {last_line(run.stderr) or run.returncode}"
            )
        return f"{self.name}:{aside}"

    # -- processes -------------------------------------------------------------------------
    async def shell(
        self,
        script: str,
        cwd: str,
        timeout_sec: float,
        *,
        grace_sec: float = 1.0,
        stdout_limit: int = OUTPUT_TAIL_BYTES,
        stdout_cap: bool = False,
    ) -> ShellRun:
        mark = OWNER.get()
        value = mark.value if mark is not None else None
        try:
            run = await run_remote(
                self.target,
                script,
                timeout_sec,
                cwd=cwd,
                mark=value,
                stdout_limit=stdout_limit,
                stdout_cap=stdout_cap,
            )
        except asyncio.CancelledError:
            if value is not None:
                await asyncio.shield(self.sweep(value, grace_sec))
            raise
        if value is not None and (run.timed_out or run.over_limit or run.held_pipes):
            await self.sweep(value, grace_sec)
        if run.returncode == SSH_FAILED and not await self.on_drop(self.name):
            detail = last_line(run.stderr)
            stderr = f"host {self.name} unreachable" + (f": {detail}" if detail else "")
            return ShellRun(run.returncode, run.stdout, stderr.encode(), timed_out=run.timed_out)
        return run

    async def _run(self, body: str, timeout_sec: float) -> ShellRun:
        return await run_remote(self.target, body, timeout_sec)

    def agent(self, argv: Sequence[str], workdir: str, mark: Mark) -> AgentSpawn:
        remote = remote_script(exec_line(argv), cwd=workdir, mark=mark.value)
        return AgentSpawn(self.target.command(remote), Path(self.target.local_dir), mark.env())

    async def sweep(self, prefix: str, grace_sec: float) -> list[int]:
        run = await self._run(sweep_script(prefix, grace_sec), grace_sec + CHECK_TIMEOUT_SEC)
        if run.returncode != 0:
            return []
        return [int(word) for word in run.stdout.split() if word.isdigit()]

    async def diff(self, issue_id: str) -> str:
        workdir = self.workdir(issue_id)
        probe = await self._run(
            f"[ -d {remote_quote(workdir)} ] || exit {_ABSENT}; command -v git >/dev/null || exit 6", CHECK_TIMEOUT_SEC
        )
        if probe.returncode == _ABSENT:
            return f"(workspace {self.name}:{workdir} does not exist yet)"
        if probe.returncode == 6:
            return f"(git is not installed on {self.name})"
        if probe.returncode != 0:
            return f"(cannot reach {self.name}: {last_line(probe.stderr) or probe.returncode})"

        async def git(args: Sequence[str], timeout_sec: float) -> tuple[int, str]:
            run = await run_remote(self.target, "exec git " + shlex.join(args) + " 2>&1", timeout_sec, cwd=workdir)
            if run.timed_out:
                return 124, f"(`git {' '.join(args)}` timed out on {self.name})"
            return run.returncode or 0, run.stdout.decode("utf-8", "replace")

        return await diff_report(git, f"{self.name}:{workdir}")

    def terminal(self, issue_id: str, argv: Sequence[str] | None, what: str) -> Terminal:
        body = exec_line(argv) if argv else 'exec "${SHELL:-/bin/sh}" -l'
        remote = remote_script(body, cwd=self.workdir(issue_id))
        return Terminal(tuple(self.target.command(remote, tty=True)), Path(self.target.local_dir), what)


class RemoteAgent:
    """The far end of one agent session on a host (`session.RemoteEnd`): its sweep by mark, and
    the verdict after `ssh` exited 255."""

    def __init__(self, place: RemotePlace, mark: str, describe_host: Callable[[str], str | None]) -> None:
        self.host = place.name
        self.place = place
        self.mark = mark
        self.describe_host = describe_host

    async def sweep(self, grace_sec: float) -> list[int]:
        return await self.place.sweep(self.mark, grace_sec)

    async def unreachable(self) -> str | None:
        if await self.place.on_drop(self.host):
            return None  # the host answers: the 255 was the agent's own exit status
        detail = self.describe_host(self.host)
        return f"host {self.host} unreachable" + (f": {detail}" if detail else "")
