"""`vik-tui doctor`: print a workflow's findings and return the exit code scripts rely on.

Exit 0 clean, 1 errors (or warnings with --strict), 2 when the file cannot be read or parsed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TextIO

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.loader import LoadResult, load_workflow


def deep_checks(result: LoadResult) -> list[Diagnostic]:
    """Run the pull command once and report what intake would reject."""
    from vik_tui.engine.intake import run_pull

    assert result.workflow is not None
    workflow = result.workflow
    pointer = "issues.pull.command"
    line = result.lines.line_of(("issues", "pull", "command"))
    pulled = asyncio.run(
        run_pull(workflow.issues.pull.command, result.path.parent, float(workflow.loop.pull_timeout_sec))
    )
    if not pulled.ok:
        return [Diagnostic(Severity.ERROR, pointer, "pull_failed", pulled.error or "pull failed", line)]
    found = [
        Diagnostic(Severity.WARNING, pointer, "issue_rejected", rejected.reason, line) for rejected in pulled.rejected
    ]
    return found


class _SafeWriter:
    """Writes text that the stream's encoding cannot hold as backslash escapes, never raising."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.encoding = getattr(out, "encoding", None) or "utf-8"

    def write(self, text: str) -> None:
        self.out.write(text.encode(self.encoding, "backslashreplace").decode(self.encoding, "replace"))


def run_doctor(path: str | Path, strict: bool, as_json: bool, deep: bool, out: TextIO) -> int:
    result = load_workflow(path)
    diagnostics = list(result.diagnostics)
    if deep and result.ok:
        diagnostics += deep_checks(result)
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
