"""Where each issue's workspace is, and what a human does in it: the issue's place (this
machine, or its SSH host once it has one), the site an attempt works in, and the plans the
screens ask for (a shell, `git diff`, a taken-over agent), with what cannot be done given back
as a `Refused` reason rather than raised."""

from __future__ import annotations

from collections.abc import Callable

from vik_tui.config.schema import Workflow
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.places.local import LocalPlace, Place, WorkspaceError
from vik_tui.engine.places.remote import DropHandler, RemotePlace
from vik_tui.engine.service.paths import Layout, UnsafeIssueId
from vik_tui.engine.stages.attempt import Site
from vik_tui.engine.stages.takeover import TakeoverPlan, TakeoverRefused, make_plan
from vik_tui.engine.view import Refused, Terminal


class Workspaces:
    """One per supervisor: the places of its issues."""

    def __init__(
        self,
        layout: Layout,
        pool: HostPool | None,
        workflow: Callable[[], Workflow],
        check_host: DropHandler,
    ) -> None:
        self.layout = layout
        self.local = LocalPlace(layout)
        self._pool = pool
        self._workflow = workflow  # the current one (a reload replaces it)
        self._check_host = check_host

    def place_of(self, issue_id: str) -> Place:
        """Where the issue lives: its SSH host once it has one, else this machine. Raises
        WorkspaceError when its host has not been reached yet."""
        host = self._pool.host_of(issue_id) if self._pool is not None else None
        return self.place(host)

    def place(self, host: str | None) -> Place:
        if host is None or self._pool is None:
            return self.local
        return RemotePlace(self._pool.hosts[host], self._workflow(), self.layout.workflow_path, self._check_host)

    def site(self, issue_id: str, host: str | None) -> Site:
        place = self.place(host)
        root = str(place.root.parent) if isinstance(place, RemotePlace) else str(self.layout.root)
        return Site(place, place.workdir(issue_id), root)

    def path(self, issue_id: str) -> str | Refused:
        """The issue's workspace path on this machine, or why there is none (an unsafe id)."""
        try:
            return str(self.layout.issue_workdir(issue_id))
        except UnsafeIssueId as exc:
            return Refused(str(exc))

    def shell_plan(self, issue_id: str) -> Terminal | Refused:
        """The user's shell in the issue's workspace (`ssh -t` on its host), or why there is none."""
        try:
            place = self.place_of(issue_id)
            if place.host is None and not self.layout.issue_workdir(issue_id).is_dir():
                raise WorkspaceError(f"the workspace does not exist yet: {self.layout.issue_workdir(issue_id)}")
        except (WorkspaceError, UnsafeIssueId) as exc:
            return Refused(str(exc))
        where = f" on {place.host}" if place.host else ""
        return place.terminal(issue_id, None, f"a shell in {place.workdir(issue_id)}{where}")

    async def diff(self, issue_id: str) -> str:
        """`git status` and the diff of the issue's workspace, wherever it is."""
        try:
            place = self.place_of(issue_id)
        except WorkspaceError as exc:
            return f"({exc})"
        return await place.diff(issue_id)

    def takeover_plan(
        self, issue_id: str, what: str, running: bool, agent: str, session_file: str, known_id: str | None
    ) -> TakeoverPlan:
        """The session's agent reopened interactively (reads the session file); raises
        TakeoverRefused with the reason."""
        config = self._workflow().agents.get(agent)
        if config is None:
            raise TakeoverRefused(f"agent {agent!r} is no longer in the workflow")
        try:
            place = self.place_of(issue_id)
        except WorkspaceError as exc:
            raise TakeoverRefused(str(exc)) from None
        resolved = config.resolved(self.layout.workflow_dir) if place.host is None else config
        return make_plan(what, running, resolved, session_file, known_id, place, issue_id)
