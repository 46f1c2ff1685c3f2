"""vik's workflow checks and ours, run on the raw YAML data before and after validation."""

from __future__ import annotations

import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vik_tui.config.diagnostics import Diagnostic, Severity, dotted
from vik_tui.config.schema import RUNTIMES, Workflow, known_fields
from vik_tui.config.yaml_lines import LineMap, Pointer

# Maps that must not be empty (vik: "empty maps"); `workspace: {}` and `args: {}` are meaningful.
_NON_EMPTY_MAPS: set[tuple[str, ...]] = {("agents",), ("issue", "stages"), ("issues",), ("issue",)}


def _model_of(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """('model'|'dict', Model) for annotations holding models, else None."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    if origin is dict:
        value_type = typing.get_args(annotation)[1]
        if isinstance(value_type, type) and issubclass(value_type, BaseModel):
            return ("dict", value_type)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found:
                return found
    return None


class Checker:
    """Collects diagnostics for one workflow document."""

    def __init__(self, lines: LineMap, workflow_dir: Path) -> None:
        self.lines = lines
        self.workflow_dir = workflow_dir
        self.found: list[Diagnostic] = []

    def add(self, severity: Severity, pointer: Pointer, code: str, message: str) -> None:
        self.found.append(Diagnostic(severity, dotted(pointer), code, message, self.lines.line_of(pointer)))

    # -- structural checks on raw data -------------------------------------------------
    def check_raw(self, data: dict[str, Any]) -> None:
        self._walk_model(Workflow, data, ())
        for pointer, value in _iter_values(data, ()):
            if isinstance(value, str) and not value.strip():
                self.add(Severity.ERROR, pointer, "empty_string", "must not be an empty string")
            elif isinstance(value, dict) and not value and pointer in _NON_EMPTY_MAPS:
                self.add(Severity.ERROR, pointer, "empty_map", "must not be an empty map")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if pointer and pointer[0] in ("loop", "issues") and value <= 0:
                    self.add(Severity.ERROR, pointer, "non_positive", f"must be greater than 0 (got {value})")
        for section in ("agents", "issues", "issue"):
            if section not in data:
                self.add(Severity.ERROR, (section,), "missing_field", f"required section `{section}` is missing")

    def _walk_model(self, model: type[BaseModel], data: Any, pointer: Pointer) -> None:
        if not isinstance(data, dict):
            return
        allowed = known_fields(model)
        for key, value in data.items():
            child = pointer + (str(key),)
            if str(key) not in allowed:
                self.add(Severity.WARNING, child, "unknown_field", f"unknown field `{key}` is ignored")
                continue
            nested = _model_of(model.model_fields[str(key)].annotation)
            if not nested:
                continue
            kind, sub = nested
            if kind == "model":
                self._walk_model(sub, value, child)
            elif isinstance(value, dict):
                for name, item in value.items():
                    self._walk_model(sub, item, child + (str(name),))

    # -- pydantic type errors ---------------------------------------------------------
    def add_validation_errors(self, error: ValidationError) -> None:
        for item in error.errors():
            pointer = tuple(p for p in item["loc"] if isinstance(p, (str, int)))
            # pydantic appends union branch names like 'int'/'float'; trim to real keys.
            pointer = _trim_to_known(pointer, self.lines)
            code = "missing_field" if item["type"] == "missing" else "invalid_type"
            if code == "missing_field" and any(d.pointer == dotted(pointer) for d in self.found):
                continue
            if code == "missing_field":
                message = "required field is missing"
            else:
                message = f"{item['msg']} (got {item.get('input')!r})"
            self.add(Severity.ERROR, pointer, code, message)

    # -- semantic checks on a valid model ---------------------------------------------
    def check_semantics(self, workflow: Workflow, check_path: bool = True) -> None:
        for name, agent in workflow.agents.items():
            if agent.runtime not in RUNTIMES:
                self.add(
                    Severity.ERROR, ("agents", name, "runtime"), "unknown_runtime",
                    f"unknown runtime `{agent.runtime}` (expected one of: {', '.join(RUNTIMES)})",
                )
            elif check_path and agent.runtime != "demo" and shutil.which(agent.executable) is None:
                self.add(
                    Severity.WARNING, ("agents", name, "command" if agent.command else "runtime"),
                    "executable_not_found", f"`{agent.executable}` not found on PATH",
                )
        for stage_name, stage in workflow.issue.stages.items():
            base = ("issue", "stages", stage_name)
            if stage.agent not in workflow.agents:
                self.add(
                    Severity.ERROR, base + ("agent",), "undefined_agent",
                    f"agent `{stage.agent}` is not defined in `agents`",
                )
            sources = [s for s in ("prompt", "prompt_file") if getattr(stage, s) is not None]
            if len(sources) != 1:
                detail = "neither is set" if not sources else "both are set"
                self.add(
                    Severity.ERROR, base, "prompt_source",
                    f"a stage needs exactly one of `prompt` or `prompt_file` ({detail})",
                )
            if stage.prompt_file:
                path = Path(stage.prompt_file).expanduser()
                if not path.is_absolute():
                    path = self.workflow_dir / path
                if not path.is_file():
                    self.add(
                        Severity.ERROR, base + ("prompt_file",), "prompt_file_missing",
                        f"prompt file not found: {path}",
                    )


def _iter_values(data: Any, pointer: Pointer) -> Iterator[tuple[Pointer, Any]]:
    yield pointer, data
    if isinstance(data, dict):
        for key, value in data.items():
            if pointer[-1:] == ("args",) and len(pointer) == 3 and pointer[0] == "agents":
                continue  # agent args are forwarded verbatim; `false` and "" are meaningful there
            yield from _iter_values(value, pointer + (str(key),))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _iter_values(value, pointer + (index,))


def _trim_to_known(pointer: Pointer, lines: LineMap) -> Pointer:
    probe = pointer
    while probe and probe not in lines.lines and isinstance(probe[-1], str) and probe[-1] in (
        "int", "float", "str", "bool", "none", "constrained-str", "function-after",
    ):
        probe = probe[:-1]
    return probe
