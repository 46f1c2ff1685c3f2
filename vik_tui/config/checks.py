"""vik's workflow checks and ours, run on the raw YAML data before and after validation."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vik_tui.config.diagnostics import Diagnostic, Severity, dotted
from vik_tui.config.files import file_kind
from vik_tui.config.ids import unsafe_id_reason
from vik_tui.config.jinja import PULL_NAMES, STAGE_NAMES, check_template, outcome_compared
from vik_tui.config.schema import DEFAULT_EXECUTABLES, RUNTIMES, Workflow, known_fields
from vik_tui.config.yaml_lines import LineMap, Pointer

# Maps that must not be empty (vik: "empty maps"); `workspace: {}` and `args: {}` are meaningful.
_NON_EMPTY_MAPS: set[tuple[str, ...]] = {("agents",), ("issue", "stages"), ("issues",), ("issue",)}
# Numbers under `loop` / `issues` are counts, milliseconds or seconds; beyond this they are typos
# (and a 400-digit integer would overflow float conversion in the engine).
MAX_NUMBER = 1_000_000_000


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


def is_mapping_at(pointer: Pointer) -> bool:
    """Whether the schema expects a mapping at `pointer` (a section, a named agent or stage, `args`)."""
    model: type[BaseModel] | None = Workflow
    parts = list(pointer)
    while parts and model is not None:
        part = parts.pop(0)
        info = model.model_fields.get(str(part))
        if info is None:
            return False
        annotation = info.annotation
        nested = _model_of(annotation)
        if nested is None:
            # a free-form mapping such as `args`: the mapping itself, nothing below it
            return not parts and typing.get_origin(annotation) is dict
        kind, sub = nested
        if kind == "dict":
            if not parts:
                return True
            parts.pop(0)  # the agent's or stage's name
        model = sub
    return not parts


class Checker:
    """Collects diagnostics for one workflow document."""

    def __init__(self, lines: LineMap, workflow_dir: Path) -> None:
        self.lines = lines
        self.workflow_dir = workflow_dir
        self.found: list[Diagnostic] = []

    def add(
        self,
        severity: Severity,
        pointer: Pointer,
        code: str,
        message: str,
        *,
        payload: str | int | float | None = None,
        line: int | None = None,
    ) -> None:
        self.found.append(
            Diagnostic(
                severity,
                _clip(printable(dotted(pointer)), 300),
                code,
                _clip(printable(message), 1000),
                line if line is not None else self.lines.line_of(pointer),
                payload=_clip(printable(payload), 300) if isinstance(payload, str) else payload,
            )
        )

    # -- structural checks on raw data -------------------------------------------------
    def check_raw(self, data: dict[str, Any]) -> None:
        self._walk_model(Workflow, data, ())
        for pointer, value in _iter_values(data, ()):
            if value is None and pointer and is_mapping_at(pointer):
                # vik: "invalid type: unit value, expected struct ..."; an empty value (`loop:`) is `{}`
                self.add(
                    Severity.ERROR,
                    pointer,
                    "invalid_type",
                    "must be a mapping (got null); leave the value empty or write {} for an empty one",
                )
                continue
            if isinstance(value, dict):
                for key in value:
                    if isinstance(key, str) and not key.strip():
                        self.add(
                            Severity.ERROR,
                            (*pointer, key),
                            "empty_str",
                            f"empty key {key!r} under `{dotted(pointer) or 'the top level'}`",
                        )
            if isinstance(value, str) and _vik_empty_str(pointer, value):
                self.add(Severity.ERROR, pointer, "empty_str", "cannot be an empty string")
            elif isinstance(value, dict) and not value and pointer in _NON_EMPTY_MAPS:
                self.add(Severity.ERROR, pointer, "empty_map", "must not be an empty map")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if not pointer or pointer[0] not in ("loop", "issues", "worker", "notify"):
                    continue
                if isinstance(value, float) and not math.isfinite(value):
                    self.add(Severity.ERROR, pointer, "not_finite", f"must be a finite number (got {value})")
                elif value <= 0:
                    self.add(
                        Severity.ERROR,
                        pointer,
                        "non_positive_number",
                        f"must be greater than 0 (got {value})",
                        payload=value,
                    )
                elif value > MAX_NUMBER:
                    shown = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
                    self.add(Severity.ERROR, pointer, "too_large", f"must be at most {MAX_NUMBER} (got {shown})")
        for pointer, line, first_line in self.lines.duplicates:
            self.found.append(
                Diagnostic(
                    Severity.ERROR,
                    _clip(printable(dotted(pointer)), 300),
                    "duplicate_key",
                    _clip(
                        printable(
                            f"duplicate key `{pointer[-1]}` (first defined on line {first_line}); "
                            "only the last one would be used"
                        ),
                        1000,
                    ),
                    line,
                )
            )
        stages = data.get("issue", {}).get("stages") if isinstance(data.get("issue"), dict) else None
        if isinstance(stages, dict):
            for name in stages:
                reason = unsafe_id_reason(str(name))
                if reason:
                    self.add(
                        Severity.ERROR,
                        ("issue", "stages", str(name)),
                        "unsafe_stage_name",
                        f"stage name {str(name)!r} cannot be used in session file names: "
                        f"{reason.replace('id', 'name', 1)}",
                    )
        for section in ("agents", "issues", "issue"):
            if section not in data:
                self.add(Severity.ERROR, (section,), "missing_field", f"required section `{section}` is missing")

    def _walk_model(self, model: type[BaseModel], data: Any, pointer: Pointer) -> None:
        if not isinstance(data, dict):
            return
        allowed = known_fields(model)
        for key, value in data.items():
            child = (*pointer, str(key))
            if str(key) not in allowed:
                if str(key).strip():  # an empty key is already an error
                    hint = did_you_mean(str(key), allowed)
                    self.add(Severity.WARNING, child, "unknown_field", f"unknown field `{key}` is ignored{hint}")
                continue
            nested = _model_of(model.model_fields[str(key)].annotation)
            if not nested:
                continue
            kind, sub = nested
            if kind == "model":
                self._walk_model(sub, value, child)
            elif isinstance(value, dict):
                for name, item in value.items():
                    self._walk_model(sub, item, (*child, str(name)))

    # -- pydantic type errors ---------------------------------------------------------
    def add_validation_errors(self, error: ValidationError, data: Any = None) -> None:
        items = error.errors()
        locs = {tuple(item["loc"]) for item in items}
        for item in items:
            loc = tuple(item["loc"])
            # `StrictInt | float`: pydantic reports both branches; the `float` one says "number".
            if loc and loc[-1] == "int" and (*loc[:-1], "float") in locs:
                continue
            is_key = bool(loc) and loc[-1] == "[key]"
            pointer = _real_pointer(loc[:-1] if is_key else loc, data)
            # pydantic appends union branch names like 'int'/'float'; trim to real keys.
            pointer = _trim_to_known(pointer, self.lines)
            code = "missing_field" if item["type"] == "missing" else "invalid_type"
            if any(d.pointer == dotted(pointer) and d.severity is Severity.ERROR for d in self.found):
                continue  # already explained (missing section, non-positive, too large, bad key ...)
            if code == "missing_field":
                message = "required field is missing"
            elif is_key:
                key = pointer[-1] if pointer else "?"
                message = f"key `{key}` must be a string (got {_yaml_type(item.get('input'))}); quote it"
            else:
                message = f"{item['msg']} (got {_short(item.get('input'))})"
            self.add(Severity.ERROR, pointer, code, message)

    # -- semantic checks on a valid model ---------------------------------------------
    def check_semantics(self, data: dict[str, Any], check_path: bool = True) -> None:
        """Cross-field checks on the raw data, so they run even when types are wrong elsewhere."""
        remote = self._check_worker(_mapping(data.get("worker")))
        self._check_notify(_mapping(data.get("notify")))
        check_path = check_path and not remote  # agents run on the hosts: doctor --deep looks there
        agents = _mapping(data.get("agents"))
        for name, agent in agents.items():
            if not isinstance(agent, dict) or not isinstance(agent.get("runtime"), str):
                continue
            runtime = agent["runtime"]
            command = agent.get("command") if isinstance(agent.get("command"), str) else None
            if runtime not in RUNTIMES:
                self.add(
                    Severity.ERROR,
                    ("agents", str(name), "runtime"),
                    "unknown_runtime",
                    f"unknown runtime `{printable(runtime)}` (expected one of: {', '.join(RUNTIMES)})",
                )
            elif command and not remote and (problem := path_problem(command, self.workflow_dir)):
                # a path is the user's own: a typo there is an error, found without --deep
                self.add(Severity.ERROR, ("agents", str(name), "command"), "executable_not_found", problem)
            elif check_path and runtime != "demo" and command != "" and not _is_path(command or ""):
                executable = resolve_executable(command or DEFAULT_EXECUTABLES[runtime], self.workflow_dir)
                if executable is None:
                    shown = command or DEFAULT_EXECUTABLES[runtime]
                    self.add(
                        Severity.WARNING,
                        ("agents", str(name), "command" if command else "runtime"),
                        "executable_not_found",
                        f"`{printable(shown)}` not found on PATH",
                    )
        stages = _mapping(_mapping(data.get("issue")).get("stages"))
        for stage_name, stage in stages.items():
            if not isinstance(stage, dict):
                continue
            base = ("issue", "stages", str(stage_name))
            agent_name = stage.get("agent")
            if isinstance(agent_name, str) and agent_name.strip() and agent_name not in agents:
                known = [str(name) for name in agents]
                self.add(
                    Severity.ERROR,
                    (*base, "agent"),
                    "unknown_agent",
                    f"agent `{printable(agent_name)}` is not defined in `agents`{did_you_mean(agent_name, known)}",
                    payload=agent_name,
                )
            sources = [s for s in ("prompt", "prompt_file") if stage.get(s) is not None]
            if len(sources) != 1:
                detail = "neither is set" if not sources else "both are set"
                self.add(
                    Severity.ERROR,
                    base,
                    "prompt_source",
                    f"a stage needs exactly one of `prompt` or `prompt_file` ({detail})",
                )
            prompt_file = stage.get("prompt_file")
            if isinstance(prompt_file, str) and prompt_file.strip():
                path = Path(prompt_file).expanduser()
                if not path.is_absolute():
                    path = self.workflow_dir / path
                kind = file_kind(path)
                if kind is not None:
                    # vik does not look: the stage fails when it renders. A warning, so vik's verdict stands.
                    what = "not found" if kind == "missing" else f"is {kind}"
                    self.add(
                        Severity.WARNING,
                        (*base, "prompt_file"),
                        "prompt_file_missing" if kind == "missing" else "prompt_file_not_regular",
                        f"prompt file {what}: {printable(str(path))} (the stage will fail until it is a file)",
                    )
                else:
                    self._check_prompt_file(path, (*base, "prompt_file"))
        self._check_templates(data)

    def _check_notify(self, notify: dict[Any, Any]) -> None:
        """`notify.command` runs by `sh -c` with an attention event on stdin: it must name a
        program that exists (a missing one would only be noticed at 3 a.m., in the log)."""
        command = notify.get("command")
        if not isinstance(command, str):
            return
        if not command.strip():
            self.add(Severity.ERROR, ("notify", "command"), "empty_str", "cannot be an empty string")
        elif resolve_executable(command, self.workflow_dir) is None:
            try:
                program = shlex.split(command)[0]
            except (ValueError, IndexError):
                program = command
            if program not in _SHELL_WORDS:
                self.add(
                    Severity.WARNING,
                    ("notify", "command"),
                    "executable_not_found",
                    f"`{printable(program)}` not found on PATH: notifications would fail (logged, never fatal)",
                )

    def _check_worker(self, worker: dict[Any, Any]) -> bool:
        """`worker.ssh_hosts` must be usable `ssh` destinations; True when sessions run remotely."""
        hosts = worker.get("ssh_hosts")
        seen: set[str] = set()
        for index, host in enumerate(hosts if isinstance(hosts, list) else []):
            if not isinstance(host, str):
                continue
            pointer = ("worker", "ssh_hosts", str(index))
            problem = ssh_destination_problem(host)
            if problem:
                self.add(Severity.ERROR, pointer, "bad_ssh_host", f"`{printable(host)}` {problem}", payload=host)
            elif host in seen:
                self.add(Severity.ERROR, pointer, "duplicate_ssh_host", f"`{host}` is listed twice", payload=host)
            seen.add(host)
        config = worker.get("ssh_config")
        if isinstance(config, str) and config.strip():
            path = Path(config).expanduser()
            path = path if path.is_absolute() else self.workflow_dir / path
            if not path.is_file():
                self.add(
                    Severity.ERROR,
                    ("worker", "ssh_config"),
                    "ssh_config_missing",
                    f"ssh config file not found: {printable(str(path))}",
                )
        return bool(seen)

    # -- templates ----------------------------------------------------------------------
    def _check_templates(self, data: dict[str, Any]) -> None:
        """Every template vik renders: the pull command, hooks and inline prompts."""
        issue = _mapping(data.get("issue"))
        texts: list[tuple[Pointer, Any, frozenset[str], bool]] = [
            (
                ("issues", "pull", "command"),
                _mapping(_mapping(data.get("issues")).get("pull")).get("command"),
                PULL_NAMES,
                True,
            ),
            (("issue", "hooks", "after_create"), _mapping(issue.get("hooks")).get("after_create"), STAGE_NAMES, False),
        ]
        for stage_name, stage in _mapping(issue.get("stages")).items():
            if not isinstance(stage, dict):
                continue
            base = ("issue", "stages", str(stage_name))
            texts.append(((*base, "prompt"), stage.get("prompt"), STAGE_NAMES, True))
            for hook in ("before_run", "after_run"):
                texts.append(((*base, "hooks", hook), _mapping(stage.get("hooks")).get(hook), STAGE_NAMES, True))
        for pointer, source, names, has_stage in texts:
            if not isinstance(source, str):
                continue
            problem = check_template(source, names, stage=has_stage)
            compared = outcome_compared(source) if pointer[-1] == "after_run" and problem is None else None
            if compared is not None:
                self.add(
                    Severity.WARNING,
                    pointer,
                    "outcome_object",
                    "`issue.outcome` is the outcome object (`state`, `reason`, `exit_code`, ...), no longer"
                    " the state string: write `issue.outcome.state`",
                    line=self.lines.line_in_value(pointer, compared),
                )
            if problem is not None:
                where = f" (template line {problem.line})" if problem.line else ""
                self.add(
                    Severity.ERROR,
                    pointer,
                    "template_error",
                    problem.message + where,
                    line=self.lines.line_in_value(pointer, problem.line),
                )

    def _check_prompt_file(self, path: Path, pointer: Pointer) -> None:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.add(Severity.ERROR, pointer, "prompt_file_unreadable", f"cannot read prompt file {path}: {exc}")
            return
        problem = check_template(source, STAGE_NAMES)
        if problem is not None:
            where = f"{path}:{problem.line}" if problem.line else str(path)
            self.add(Severity.ERROR, pointer, "template_error", f"{where}: {problem.message}")


_VIK_EMPTY_TRIMMED = {
    ("agents", "*", "model"),
    ("issues", "pull", "command"),
    ("issue", "stages", "*", "agent"),
    ("issue", "stages", "*", "when", "state"),
    ("issue", "stages", "*", "prompt"),
}
_VIK_EMPTY_EXACT = {("workspace", "root"), ("issue", "stages", "*", "prompt_file")}


def _vik_empty_str(pointer: Pointer, value: str) -> bool:
    """vik's `empty_str`: only these fields, some after trimming and some only when exactly ''."""
    parts = list(pointer)
    if len(parts) > 1 and parts[0] == "agents":
        parts[1] = "*"
    if len(parts) > 2 and parts[:2] == ["issue", "stages"]:
        parts[2] = "*"
    shape = tuple(parts)
    if shape in _VIK_EMPTY_EXACT:
        return value == ""
    return shape in _VIK_EMPTY_TRIMMED and not value.strip()


def ssh_destination_problem(host: str) -> str | None:
    """Why `host` cannot be an `ssh` destination word, or None. A leading `-` would be read as
    an option; blanks and control characters would split or garble the command line."""
    if not host.strip():
        return "is empty"
    if host.startswith("-"):
        return "starts with `-` (ssh would read it as an option)"
    if any(ch.isspace() or not ch.isprintable() for ch in host):
        return "contains blanks or control characters"
    return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean `x`?` for a near miss among `choices` (difflib), else nothing. difflib is
    imported here, for a workflow with a mistake: a supervisor's start does not need it."""
    from difflib import get_close_matches

    close = get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


_SHELL_WORDS = frozenset({"exec", "if", "for", "while", "case", "{", "(", "set", "test", "[", "cd", "echo", "printf"})


def _is_path(command: str) -> bool:
    try:
        return "/" in shlex.split(command)[0]
    except (ValueError, IndexError):
        return False


def path_problem(command: str, workflow_dir: Path) -> str | None:
    """What is wrong with an agent `command` whose program is a path (`./bin/codex`), in plain
    words; None when it is fine or not a path (a bare name is looked up on PATH at run time)."""
    if not _is_path(command):
        return None
    program = shlex.split(command)[0]
    path = Path(program).expanduser()
    path = path if path.is_absolute() else workflow_dir / path
    shown = printable(program)
    where = "" if str(path) == program else f" (resolved from the workflow's directory: {printable(str(path))})"
    try:
        if not path.exists():
            return f"the agent program `{shown}` does not exist{where}"
        if path.is_dir():
            return f"the agent program `{shown}` is a directory, not a program{where}"
    except OSError as exc:
        return f"the agent program `{shown}` cannot be looked at: {exc.strerror or exc}{where}"
    if not os.access(path, os.X_OK):
        return f"the agent program `{shown}` is not executable (chmod +x {shlex.quote(str(path))}){where}"
    return None


def resolve_executable(command: str, workflow_dir: Path) -> str | None:
    """Where `command`'s program is: a relative path with a slash resolves from the workflow dir."""
    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        return None
    if "/" in program:
        path = Path(program).expanduser()
        path = path if path.is_absolute() else workflow_dir / path
        return str(path) if os.access(path, os.X_OK) and path.is_file() else None
    return shutil.which(program)


def _iter_values(data: Any, pointer: Pointer) -> Iterator[tuple[Pointer, Any]]:
    yield pointer, data
    if isinstance(data, dict):
        for key, value in data.items():
            if pointer[-1:] == ("args",) and len(pointer) == 3 and pointer[0] == "agents":
                continue  # agent args are forwarded verbatim; `false` and "" are meaningful there
            yield from _iter_values(value, (*pointer, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _iter_values(value, (*pointer, index))


def _mapping(value: Any) -> dict[Any, Any]:
    """`value` if it is a mapping, else an empty one: the raw data may have any shape."""
    return value if isinstance(value, dict) else {}


def _clip(text: str, limit: int) -> str:
    """Keep findings readable when the document holds megabyte-long values or keys."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def printable(text: str) -> str:
    """Text that can be written to any UTF-8 stream: lone surrogates become `\\udXXX` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _real_pointer(loc: tuple[Any, ...], data: Any) -> Pointer:
    """pydantic's error location as a document pointer: mapping keys as text, list indexes as ints."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            match = next((k for k in node if k == part or str(k) == str(part)), part)
            out.append(str(match))
            node = node.get(match)
        elif isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            out.append(part if isinstance(part, (str, int)) and not isinstance(part, bool) else str(part))
            node = None
    return tuple(out)


def _yaml_type(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }
    return names.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _trim_to_known(pointer: Pointer, lines: LineMap) -> Pointer:
    probe = pointer
    while (
        probe
        and probe not in lines.lines
        and isinstance(probe[-1], str)
        and probe[-1]
        in (
            "int",
            "float",
            "str",
            "bool",
            "none",
            "constrained-str",
            "function-after",
        )
    ):
        probe = probe[:-1]
    return probe
