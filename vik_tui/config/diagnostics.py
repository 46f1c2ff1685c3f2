"""Findings about a workflow: each has a severity, dotted pointer, stable code and line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `code` is stable so scripts can match on it."""

    severity: Severity
    pointer: str
    code: str
    message: str
    line: int | None = None
    column: int | None = None
    # vik's codes that carry a value (`non_positive_number`, `unknown_agent`) are written in JSON
    # the way vik writes them, externally tagged: {"non_positive_number": 0}
    payload: str | int | float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        payload = data.pop("payload")
        if payload is not None:
            data["code"] = {self.code: payload}
        if self.column is None:
            data.pop("column")
        return data

    def render(self, file_name: str = "") -> str:
        """`workflow.yml:12: error [unknown_agent] issue.stages.plan.agent: ...`."""
        where = f"{file_name}:{self.line}" if self.line else file_name
        if self.column and self.line:
            where += f":{self.column}"
        pointer = f" {self.pointer}:" if self.pointer else ""
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.severity.value} [{self.code}]{pointer} {self.message}"


def dotted(pointer: tuple[str | int, ...]) -> str:
    """('issue', 'stages', 'plan') -> 'issue.stages.plan'; list indexes as [n]."""
    out = ""
    for part in pointer:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
