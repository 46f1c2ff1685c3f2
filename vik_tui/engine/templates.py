"""Render hooks and prompts: sandboxed, strict Jinja2, then prompt `exec(cmd)` expansion."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from vik_tui.engine.proc import describe_exit, run_shell, tail

EXEC_PATTERN = re.compile(r"!?`exec\((.*?)\)`", re.DOTALL)
EXEC_TIMEOUT_SEC = 30.0
EXEC_MAX_BYTES = 4 * 1024 * 1024  # an exec() printing more fails the render (memory stays bounded)


class TemplateError(Exception):
    """A template that cannot be rendered; the message says which and why."""


def shquote(value: Any) -> str:
    """Quote tracker text for a POSIX shell, so hooks can embed it safely."""
    return shlex.quote("" if value is None else str(value))


def _environment(finalize: Callable[[Any], Any] | None = None) -> SandboxedEnvironment:
    # Immutable: a template cannot modify the lists and dicts it is given (they are shared with
    # the engine's copy of the issue).
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.filters["shquote"] = shquote
    return env


_ENV = _environment()


def build_context(
    issue_fields: dict[str, Any],
    stage: str | None,
    workdir: Path,
    workspace_root: Path,
    workflow_path: Path,
) -> dict[str, Any]:
    """The variables every hook and prompt sees (docs/architecture.md §3, "Workspace, hooks and prompt")."""
    issue = dict(issue_fields)
    issue.update(workdir=str(workdir), stage=stage)
    return {
        "issue": issue,
        "workspace_root": str(workspace_root),
        "workflow_path": str(workflow_path),
        "workflow_dir": str(workflow_path.parent),
        "env": dict(os.environ),
    }


def render(source: str, context: dict[str, Any], name: str = "template") -> str:
    """Render strictly: an unknown variable is an error naming it."""
    return _render_with(_ENV, source, context, name)


def _render_with(env: SandboxedEnvironment, source: str, context: dict[str, Any], name: str) -> str:
    try:
        return env.from_string(source).render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{name}: undefined variable ({exc.message})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{name}: template syntax error at line {exc.lineno}: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"{name}: blocked by the template sandbox: {exc}") from None
    except Exception as exc:  # a template may raise anything (e.g. a filter on a bad value)
        raise TemplateError(f"{name}: {type(exc).__name__}: {exc}") from None


async def expand_exec(text: str, cwd: Path, timeout_sec: float = EXEC_TIMEOUT_SEC) -> str:
    """Replace each ``!`exec(cmd)` `` / `` `exec(cmd)` `` with cmd's stdout (one trailing newline trimmed)."""
    return await _expand(text, cwd, timeout_sec, restore=lambda part: part)


async def _expand(text: str, cwd: Path, timeout_sec: float, restore: Callable[[str], str]) -> str:
    parts: list[str] = []
    last = 0
    for match in EXEC_PATTERN.finditer(text):
        parts.append(restore(text[last : match.start()]))
        parts.append(await _run_exec(restore(match.group(1)), cwd, timeout_sec))
        last = match.end()
    parts.append(restore(text[last:]))
    return "".join(parts)


async def _run_exec(command: str, cwd: Path, timeout_sec: float) -> str:
    try:
        run = await run_shell(command, cwd, timeout_sec, stdout_limit=EXEC_MAX_BYTES, stdout_cap=True)
    except OSError as exc:
        raise TemplateError(f"prompt exec({command}) could not start in {cwd}: {exc.strerror or exc}") from None
    if run.over_limit:
        raise TemplateError(f"prompt exec({command}) printed more than {EXEC_MAX_BYTES // 2**20} MiB (stopped)")
    if run.timed_out:
        raise TemplateError(f"prompt exec({command}) timed out after {timeout_sec:g}s (process group killed)")
    if run.returncode != 0:
        detail = tail(run.stderr.decode("utf-8", "replace").strip(), 500)
        raise TemplateError(
            f"prompt exec({command}) {describe_exit(run.returncode)}" + (f": {detail}" if detail else "")
        )
    output = run.stdout.decode("utf-8", "replace")
    return output[:-1] if output.endswith("\n") else output


# Text substituted by `{{ ... }}` in a prompt (tracker titles, descriptions, ...) must not be able
# to smuggle in an `exec(...)`: while rendering a prompt, its backticks are swapped for private-use
# markers that the exec pattern cannot match, and swapped back afterwards.
_MARK = "\ue000"
_SHIELD = str.maketrans({"`": _MARK + "\ue001", _MARK: _MARK + "\ue002"})
_UNSHIELD = re.compile(_MARK + "([\ue001\ue002])")


def _shield(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        return value
    return str(value).translate(_SHIELD)


def _unshield(text: str) -> str:
    return _UNSHIELD.sub(lambda m: "`" if m.group(1) == "\ue001" else _MARK, text)


_PROMPT_ENV = _environment(finalize=_shield)


async def render_prompt(
    source: str,
    context: dict[str, Any],
    cwd: Path,
    name: str = "prompt",
    exec_timeout_sec: float = EXEC_TIMEOUT_SEC,
) -> str:
    """Jinja first, then exec expansion in the issue workspace.

    Only `exec(...)` written in the prompt source runs; one arriving inside a substituted value
    (an issue title, say) stays literal text.
    """
    rendered = _render_with(_PROMPT_ENV, source, context, name)
    return await _expand(rendered, cwd, exec_timeout_sec, restore=_unshield)
