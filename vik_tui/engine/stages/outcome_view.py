"""`issue.outcome` in an `after_run` template: the session's outcome as an object.

It was the bare state string, so `{{ issue.outcome.state }}` passed doctor and failed every
`after_run`. Now it is a map with the fields a hook wants (`state`, `reason`, `exit_code`,
`signal`, `tokens`, `attempt`, `session_file`). Templates get plain values, as vik's do
(`config/jinja`), so no object can print as the old string: doctor names every use of the old
form (`config/jinja.outcome_compared`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vik_tui.engine.stages.facts import SessionFacts


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

    def as_context(self) -> dict[str, object]:
        """The plain map templates see as `issue.outcome`."""
        return {
            "state": self.state,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "tokens": dict(self.tokens),
            "attempt": self.attempt,
            "session_file": self.session_file,
        }

    @classmethod
    def of(cls, snap: SessionFacts) -> TemplateOutcome:
        return cls(
            state=str(snap.state),
            reason=snap.reason or "",
            exit_code=snap.exit_code,
            signal=snap.signal,
            tokens=dict(snap.tokens),
            attempt=snap.attempt,
            session_file=snap.session_file,
        )
