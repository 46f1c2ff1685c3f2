"""The whole seam between the screens and the engine, as a Protocol: the Supervisor, the
scripted engine of the tests and an engine reached over HTTP all satisfy it, so a screen never
knows which one it drives. Only the typed contract crosses it: engine events (`engine_events`),
views and plans (`view`), agent events (`agents.events`), never loose dicts, and never an
exception a screen must know: what the engine refuses comes back as a `Refused` value.

Every method can be answered remotely: the sync ones take and return plain typed values and do
no I/O; whatever reads files or runs processes is async.

Below the protocol: what the UI does on the user's own terminal with a `Terminal` plan (a tmux
pane or an attached run: the UI never spawns processes itself) and what hosting an engine in
this process needs (its factory, its lock error, the stop signals). The rest of `vik_tui.ui`
imports from the engine only the contract modules (import-linter says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vik_tui.agents.events import AgentEvent
from vik_tui.engine.engine_events import Listener
from vik_tui.engine.places.terminals import open_in_tmux, run_attached
from vik_tui.engine.places.workspace_tools import inside_tmux
from vik_tui.engine.service.state import AlreadyRunning
from vik_tui.engine.service.stop_signals import TERMINAL_CLOSED, install_stop_signals
from vik_tui.engine.view import EngineView, Refused, Terminal

if TYPE_CHECKING:
    from vik_tui.config.schema import Workflow

__all__ = [
    "TERMINAL_CLOSED",
    "AlreadyRunning",
    "Attached",
    "Engine",
    "inside_tmux",
    "install_stop_signals",
    "local_engine",
    "open_in_tmux",
    "run_attached",
]


class Engine(Protocol):
    workflow_path: Path
    # awaited once, between the first intake and its dispatch (the screen draws the list first)
    before_first_dispatch: Callable[[], Awaitable[None]] | None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Every engine event from now on, in order; returns the unsubscribe."""
        ...

    async def run(self) -> int:
        """Run until stopped or done; raises AlreadyRunning (a local engine's lock) or OSError."""
        ...

    async def load_history(self) -> int:
        """Sessions of earlier runs adopted (before `run`); how many."""
        ...

    def snapshot(self) -> EngineView:
        """A frozen view of everything the screens show; cheap enough for every frame."""
        ...

    # commands: each answers in words for the user
    def cancel(self, issue_id: str, stage: str) -> str: ...
    def retry(self, issue_id: str, stage: str) -> str: ...
    def poll_now(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self, reason: str = ...) -> None: ...

    # the workspace and the sessions
    def workspace_path(self, issue_id: str) -> str | Refused:
        """The issue's workspace path on the engine's machine."""
        ...

    async def workspace_diff(self, issue_id: str) -> str:
        """`git status` and the diff of the issue's workspace, as text (or why there is none)."""
        ...

    async def shell_plan(self, issue_id: str) -> Terminal | Refused:
        """A shell in the issue's workspace (`ssh -t` to its host)."""
        ...

    async def takeover_plan(self, issue_id: str, session_uuid: str) -> Terminal | Refused:
        """The session's agent reopened interactively."""
        ...

    async def session_records(self, session_file: str, limit: int | None = None) -> list[AgentEvent]:
        """The session file's records (the last `limit`), for panes opened late."""
        ...


@runtime_checkable
class Attached(Protocol):
    """An Engine whose supervisor runs in another process (`vik-tui attach`): `stop()` only
    detaches, the header shows `attachment()`, and the supervisor is stopped only by
    `stop_supervisor()` (a separate, confirmed command). A shell or take-over plan that cannot
    run on this machine (`runs_here`) is shown as the command to run there."""

    on_change: Callable[[], None] | None  # the app repaints when the mirror or the connection moved

    def attachment(self) -> str:
        """The header's words for the connection (`attached to pid 4242`)."""
        ...

    def stop_supervisor(self) -> None: ...
    def runs_here(self, plan: Terminal) -> bool: ...


def local_engine(workflow: Workflow, workflow_path: Path, *, watch: bool) -> Engine:
    """The Supervisor, in this process (imported here, late: the app module loads without it)."""
    from vik_tui.engine.supervisor import Supervisor

    return Supervisor(workflow, workflow_path, watch=watch)
