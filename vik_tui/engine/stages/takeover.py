"""Take over an agent: reopen its own session interactively in its workspace.

The UI never spawns processes: it asks `Supervisor.takeover_plan()` for a `TakeoverPlan`
(the command line from `agents.resume`, the workspace) and then calls `terminals.open_in_tmux()`
inside tmux or `terminals.run_attached()` while the app is suspended. Only a stage that is not running
can be taken over: two writers in one workspace (the unattended agent and a human's resumed
session) would step on each other.
"""

from __future__ import annotations

from pathlib import Path

from vik_tui.agents.events import SessionStarted
from vik_tui.agents.resume import NotResumable, resume_command
from vik_tui.config.schema import AgentConfig
from vik_tui.engine.places.local import Place
from vik_tui.engine.stages.replay import read_session_head
from vik_tui.engine.view import Terminal


class TakeoverRefused(Exception):
    """Why this session cannot be taken over now, in words for the user."""


TakeoverPlan = Terminal  # the agent's resume command, in the issue's workspace (here or on its host)


def agent_session_id(session_file: str) -> str | None:
    """The agent's own session id, from the session file's `session_started` record (the id is
    in the file even after a restart, when the engine's memory of it is gone)."""
    for record in read_session_head(session_file, limit=20):
        if isinstance(record, SessionStarted) and record.session_id:
            return str(record.session_id)
    return None


def make_plan(
    what: str,
    running: bool,
    agent: AgentConfig,
    session_file: str,
    known_id: str | None,
    place: Place,
    issue_id: str,
) -> TakeoverPlan:
    """Check that the session can be taken over and build the plan (raises TakeoverRefused).
    On an SSH host the plan is `ssh -t` to it; whether the workspace exists there shows when it runs."""
    if running:
        raise TakeoverRefused(f"{what} is running; cancel it (c) or wait until it ends, then take over")
    workdir = place.workdir(issue_id)
    if place.host is None and not Path(workdir).is_dir():
        raise TakeoverRefused(f"the workspace of {what} does not exist: {workdir}")
    session_id = known_id or agent_session_id(session_file)
    try:
        argv = resume_command(agent, session_id or "")
    except NotResumable as exc:
        raise TakeoverRefused(f"cannot take over {what}: {exc}") from None
    return place.terminal(issue_id, argv, what)
