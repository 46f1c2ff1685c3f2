"""`vik-tui doctor`: print a workflow's findings and return the exit code scripts rely on.

Exit 0 clean, 1 errors (or warnings with --strict), 2 when the file cannot be read or parsed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.loader import LoadResult, load_workflow

DeepCheck = Callable[[LoadResult], list[Diagnostic]]
"""`--deep`: more findings about a workflow that loaded cleanly. The caller supplies it (the
engine's pull check), because config must not import the engine."""


class _SafeWriter:
    """Writes text that the stream's encoding cannot hold as backslash escapes, never raising."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.encoding = getattr(out, "encoding", None) or "utf-8"

    def write(self, text: str) -> None:
        self.out.write(text.encode(self.encoding, "backslashreplace").decode(self.encoding, "replace"))


def run_doctor(path: str | Path, strict: bool, as_json: bool, out: TextIO, deep: DeepCheck | None = None) -> int:
    """Print every finding about the workflow at `path` and return the exit code."""
    # executables on PATH are the environment's business, not the file's (vik does not look):
    # only --deep, which also runs the pull command, checks them
    result = load_workflow(path, check_path=deep is not None)
    diagnostics = list(result.diagnostics)
    if deep is not None and result.ok:
        diagnostics += deep(result)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    warnings = [d for d in diagnostics if d.severity is Severity.WARNING]
    writer = _SafeWriter(out)
    if as_json:
        writer.write(
            json.dumps({"errors": [d.to_dict() for d in errors], "warnings": [d.to_dict() for d in warnings]}, indent=2)
            + "\n"
        )
    else:
        name = str(result.path)
        for diag in diagnostics:
            writer.write(diag.render(name) + "\n")
        verdict = "ok" if not errors and not warnings else f"{len(errors)} error(s), {len(warnings)} warning(s)"
        writer.write(f"{name}: {verdict}\n")
    if result.fatal:
        return 2
    if errors or (strict and warnings):
        return 1
    return 0
