"""Mappers a reader process imports by name in `test_offload.py` (this directory is put on its
PYTHONPATH): each breaks in a way the mapper's own safety net does not catch."""

from __future__ import annotations

from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.events import AgentEvent


class BreaksAfter(CodexMapper):
    """Returns something that is not a list of events after `good` lines: the line work itself
    fails (as it would on MemoryError), in whichever process maps the line."""

    def __init__(self, good: int) -> None:
        self.good = good

    def feed(self, obj: object) -> list[AgentEvent]:
        self.good -= 1
        if self.good < 0:
            return 5  # type: ignore[return-value]
        return super().feed(obj)
