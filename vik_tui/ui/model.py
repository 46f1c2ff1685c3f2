"""Read the engine's `snapshot()` dict the way the screen needs it. Pure functions, no Textual."""

from __future__ import annotations

from typing import Any

from vik_tui.engine.runs import ACTIVE  # the engine's definition of a stage that holds a slot
from vik_tui.ui.clock import Clock

CANCELLABLE = (*ACTIVE, "retry_wait")
SESSION_LIVE = ("starting", "running")

Issue = dict[str, Any]
Run = dict[str, Any]
Session = dict[str, Any]


def sessions_of(issue: Issue) -> list[Session]:
    """Every session (every attempt of every stage) of an issue, oldest first (uuid7 order)."""
    found: dict[str, Session] = {}
    for run in issue.get("stages", []):
        for session in run.get("history") or []:
            found[session["session_uuid"]] = session
        current = run.get("session")
        if current:  # the current one is the freshest copy
            found[current["session_uuid"]] = current
    return sorted(found.values(), key=lambda s: s["session_uuid"])


def latest_session(issue: Issue) -> Session | None:
    sessions = sessions_of(issue)
    return sessions[-1] if sessions else None


def default_session(sessions: list[Session]) -> Session | None:
    """The pane to show first: the newest live session, else the newest one."""
    for session in reversed(sessions):
        if session.get("state") in SESSION_LIVE:
            return session
    return sessions[-1] if sessions else None


def run_of(issue: Issue | None, stage: str) -> Run | None:
    if issue is None:
        return None
    for run in issue.get("stages", []):
        if run.get("stage") == stage:
            return run
    return None


def first_active_run(issue: Issue | None) -> Run | None:
    """The stage a command applies to when no pane says otherwise."""
    if issue is None:
        return None
    runs = issue.get("stages", [])
    for run in runs:
        if run.get("status") in CANCELLABLE:
            return run
    return runs[-1] if runs else None


def issue_tokens(issue: Issue) -> int:
    """Tokens in + out over every session of the issue."""
    total = 0
    for session in sessions_of(issue):
        tokens = session.get("tokens") or {}
        total += int(tokens.get("input", 0) or 0) + int(tokens.get("output", 0) or 0)
    return total


def session_elapsed(session: Session | None, clock: Clock) -> float | None:
    if not session:
        return None
    return clock.seconds_since(session.get("started_at"), session.get("ended_at"))


def active_run_count(snapshot: dict[str, Any]) -> int:
    """Stage runs that hold an agent or are about to (what quitting would stop)."""
    return sum(
        1 for issue in snapshot.get("issues", []) for run in issue.get("stages", []) if run.get("status") in ACTIVE
    )


def find_issue(snapshot: dict[str, Any], issue_id: str | None) -> Issue | None:
    if issue_id is None:
        return None
    for issue in snapshot.get("issues", []):
        if issue["id"] == issue_id:
            return issue
    return None


def find_session(issue: Issue | None, session_uuid: str | None) -> Session | None:
    if issue is None or session_uuid is None:
        return None
    for session in sessions_of(issue):
        if session["session_uuid"] == session_uuid:
            return session
    return None
