"""How to open an agent's own session interactively, per runtime (the "take over" of the UI).

`codex resume <id>` and `claude --resume <id>` reopen the conversation the supervisor ran
unattended, so a human can carry on where the agent stopped. Only the command line is built
here; the engine (`engine/stages/takeover.py`) runs it.
"""

from __future__ import annotations

from vik_tui.config.schema import AgentConfig


class NotResumable(Exception):
    """This runtime has no interactive session to reopen (the message says why)."""


def resume_command(agent: AgentConfig, session_id: str) -> list[str]:
    """The argv that reopens `session_id` interactively with the agent's own CLI. The model is
    kept (a resumed conversation on another model would surprise); unattended-run flags are not."""
    if not session_id:
        raise NotResumable("the agent never reported a session id (no session_started record)")
    model = ["-m", agent.model] if agent.model else []
    if agent.runtime == "codex":
        return [*agent.program, "resume", *model, session_id]
    if agent.runtime == "claude_code":
        model = ["--model", agent.model] if agent.model else []
        return [*agent.program, *model, "--resume", session_id]
    raise NotResumable(f"the {agent.runtime} runtime has no interactive session to take over")
