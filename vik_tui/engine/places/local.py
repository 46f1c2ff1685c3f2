"""Where an issue's processes run: this machine (`LocalPlace`) or an SSH worker host
(`remote_place.RemotePlace`). The supervisor asks the issue's place for everything that
touches the workspace, so hooks, exec(), the agent, `git diff` and the shell follow the issue.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vik_tui.engine.places.workspace_tools import git_diff, user_shell
from vik_tui.engine.processes.descendants import Mark
from vik_tui.engine.processes.proc import ShellRunner, local_shell
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.view import Terminal

SET_ASIDE_DIR = "set-aside"  # under the workflow root: half-made workspaces, kept for a person to look at


@dataclass(frozen=True, slots=True)
class AgentSpawn:
    """What to start on this machine for an agent: its argv, local directory and environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


class Place(Protocol):
    host: str | None  # None: this machine

    def workdir(self, issue_id: str) -> str:
        """The workspace path as the processes of the place see it."""
        ...

    async def ensure_workdir(self, issue_id: str) -> bool:
        """Create it unless it exists; True when created now. Raises WorkspaceError (unsafe,
        outside the root, cannot create)."""
        ...

    async def remove_workdir(self, issue_id: str) -> None: ...

    async def set_aside_workdir(self, issue_id: str, name: str, reason: str) -> str | None:
        """Rename the workspace to `<root>/set-aside/<name>`, with `<name>.reason` beside it;
        the new path, or None when there was no workspace."""
        ...

    @property
    def shell(self) -> ShellRunner:
        """`sh -c script` in `cwd` there, bounded as `proc.run_shell`; a stop ends everything it started."""
        ...

    def agent(self, argv: Sequence[str], workdir: str, mark: Mark) -> AgentSpawn: ...

    async def sweep(self, prefix: str, grace_sec: float) -> list[int]:
        """End what is left there carrying a mark under `prefix`; the pids signalled."""
        ...

    async def diff(self, issue_id: str) -> str: ...

    def terminal(self, issue_id: str, argv: Sequence[str] | None, what: str) -> Terminal:
        """`argv` (or the user's shell) in the workspace, attached to a terminal."""
        ...


class WorkspaceError(Exception):
    """The workspace cannot be used; the message says why."""


class LocalPlace:
    """This machine: the layout's paths, `sh`, `git` and `$SHELL` run directly."""

    host: str | None = None

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def workdir(self, issue_id: str) -> str:
        return str(self.layout.issue_workdir(issue_id))

    async def ensure_workdir(self, issue_id: str) -> bool:
        path = self.layout.issue_workdir(issue_id)  # raises UnsafeIssueId for an unsafe id
        try:
            created = not path.exists()
            if created:
                path.mkdir(parents=True, exist_ok=True)
            self.layout.issue_workdir(issue_id)  # re-check: the directory must not be a symlink out
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:  # UnsafeIssueId: an unsafe id, or a workspace leading out of the root
            raise WorkspaceError(str(exc)) from exc
        return created

    async def remove_workdir(self, issue_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.layout.issue_workdir(issue_id), True)

    async def set_aside_workdir(self, issue_id: str, name: str, reason: str) -> str | None:
        path = self.layout.issue_workdir(issue_id)
        if not path.is_dir():
            return None
        aside = self.layout.root / SET_ASIDE_DIR
        try:
            aside.mkdir(parents=True, exist_ok=True)
            (aside / f"{name}.reason").write_text(reason + "\n", encoding="utf-8")
            path.rename(aside / name)
        except OSError as exc:
            raise WorkspaceError(f"cannot set the workspace {path} aside: {exc.strerror or exc}") from exc
        return str(aside / name)

    @property
    def shell(self) -> ShellRunner:
        return local_shell

    def agent(self, argv: Sequence[str], workdir: str, mark: Mark) -> AgentSpawn:
        return AgentSpawn(list(argv), Path(workdir), mark.env())

    async def sweep(self, prefix: str, grace_sec: float) -> list[int]:
        return []  # the supervisor's own `kill_marked` sweeps this machine

    async def diff(self, issue_id: str) -> str:
        return await git_diff(self.layout.issue_workdir(issue_id))

    def terminal(self, issue_id: str, argv: Sequence[str] | None, what: str) -> Terminal:
        return Terminal(tuple(argv) if argv else (user_shell(),), self.layout.issue_workdir(issue_id), what)
