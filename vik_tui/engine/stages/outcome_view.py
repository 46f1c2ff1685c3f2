"""`issue.outcome` in an `after_run` template: the session's outcome as an object.

It was the bare state string, so `{{ issue.outcome.state }}` passed doctor and failed every
`after_run`. Now it has the fields a hook wants (`state`, `reason`, `exit_code`, `signal`,
`tokens`, `attempt`, `session_file`), and printing it still gives the state, so
`{{ issue.outcome }}` in a commit message reads as before. A comparison with a string
(`issue.outcome == "completed"`) cannot keep working on an object: doctor names it
(`config/jinja.outcome_compared`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vik_tui.engine.stages.session import SessionSnapshot


@dataclass(frozen=True)
class TemplateOutcome:
    state: str  # completed | failed | cancelled
    reason: str
    exit_code: int | None
    signal: int | None
    tokens: Mapping[str, int]
    attempt: int
    session_file: str

    def __str__(self) -> str:
        return self.state

    @classmethod
    def of(cls, snap: SessionSnapshot) -> TemplateOutcome:
        return cls(
            state=str(snap.state),
            reason=snap.reason or "",
            exit_code=snap.exit_code,
            signal=snap.signal,
            tokens=dict(snap.tokens),
            attempt=snap.attempt,
            session_file=snap.session_file,
        )
