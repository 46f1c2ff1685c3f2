"""Take over an agent: reopen its own session interactively in its workspace.

The UI never spawns processes: it asks `Supervisor.takeover_plan()` for a `TakeoverPlan`
(the command line from `agents.resume`, the workspace) and then calls `open_tmux_split()`
inside tmux or `run_foreground()` while the app is suspended. Only a stage that is not running
can be taken over: two writers in one workspace (the unattended agent and a human's resumed
session) would step on each other.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vik_tui.agents.events import SessionStarted
from vik_tui.agents.resume import NotResumable, resume_command
from vik_tui.config.schema import AgentConfig
from vik_tui.engine.replay import read_session_head
from vik_tui.engine.workspace_tools import split_tmux


class TakeoverRefused(Exception):
    """Why this session cannot be taken over now, in words for the user."""


@dataclass(frozen=True, slots=True)
class TakeoverPlan:
    argv: tuple[str, ...]
    cwd: Path
    what: str  # `ENG-12/plan #2`, for messages

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)


def agent_session_id(session_file: str) -> str | None:
    """The agent's own session id, from the session file's `session_started` record (the id is
    in the file even after a restart, when the engine's memory of it is gone)."""
    for record in read_session_head(session_file, limit=20):
        if isinstance(record, SessionStarted) and record.session_id:
            return str(record.session_id)
    return None


def open_tmux_split(plan: TakeoverPlan) -> tuple[bool, str]:
    """Run the plan in a new tmux pane beside the app, so the UI keeps streaming."""
    return split_tmux(plan.cwd, plan.command_line, f"took over {plan.what} in a tmux pane: {plan.command_line}")


def run_foreground(plan: TakeoverPlan) -> int:
    """Run the plan attached to the terminal until the user leaves it (the app is suspended)."""
    try:
        return subprocess.call(list(plan.argv), cwd=str(plan.cwd))
    except OSError as exc:
        print(f"vik-tui: cannot start {plan.argv[0]}: {exc}")
        return 127


def make_plan(
    what: str, running: bool, agent: AgentConfig, session_file: str, known_id: str | None, workdir: Path
) -> TakeoverPlan:
    """Check that the session can be taken over and build the plan (raises TakeoverRefused)."""
    if running:
        raise TakeoverRefused(f"{what} is running; cancel it (c) or wait until it ends, then take over")
    if not workdir.is_dir():
        raise TakeoverRefused(f"the workspace of {what} does not exist: {workdir}")
    session_id = known_id or agent_session_id(session_file)
    try:
        argv = resume_command(agent, session_id or "")
    except NotResumable as exc:
        raise TakeoverRefused(f"cannot take over {what}: {exc}") from None
    return TakeoverPlan(tuple(argv), workdir, what)
