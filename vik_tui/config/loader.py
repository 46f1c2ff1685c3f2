"""Load a workflow file into a validated model plus every diagnostic about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from vik_tui.config.checks import Checker, is_mapping_at
from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.schema import Workflow
from vik_tui.config.yaml_lines import LineMap, YamlSyntaxError, parse_yaml


@dataclass
class LoadResult:
    """What loading found. `fatal` means the file could not be read or parsed at all."""

    path: Path
    workflow: Workflow | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    fatal: bool = False
    lines: LineMap = field(default_factory=LineMap)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        """Usable: parsed, validated, and no errors (warnings allowed)."""
        return self.workflow is not None and not self.errors


def _fatal(path: Path, code: str, message: str, line: int | None = None, column: int | None = None) -> LoadResult:
    diag = Diagnostic(Severity.ERROR, "", code, message, line, column)
    return LoadResult(path=path, workflow=None, diagnostics=[diag], fatal=True)


def load_workflow(path: str | Path, check_path: bool = True) -> LoadResult:
    """Read, parse, check and validate. Never raises for bad input."""
    path = Path(path).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _fatal(path, "file_missing", f"workflow file not found: {path}")
    except IsADirectoryError:
        return _fatal(path, "file_unreadable", f"workflow path is a directory: {path}")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        return _fatal(
            path,
            "file_unreadable",
            f"workflow file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            line,
        )
    except OSError as exc:
        return _fatal(path, "file_unreadable", f"cannot read workflow file {path}: {exc.strerror or exc}")
    try:
        data, lines = parse_yaml(text, is_mapping=is_mapping_at)
    except YamlSyntaxError as exc:
        return _fatal(path, exc.code, exc.message, exc.line, exc.column)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        return _fatal(path, "not_a_mapping", f"workflow must be a YAML mapping at the top level (got {kind})", 1)
    checker = Checker(lines, path.parent)
    checker.check_raw(data)
    workflow: Workflow | None = None
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        checker.add_validation_errors(exc, data)
    checker.check_semantics(data, check_path=check_path)
    result = LoadResult(path=path, workflow=workflow, diagnostics=_dedupe(checker.found), lines=lines)
    return result


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    out: list[Diagnostic] = []
    for item in items:
        key = (item.pointer, item.code)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return sorted(out, key=lambda d: (d.line or 0, d.pointer))
