"""Render hooks, prompts and the pull command with vik's engine (MiniJinja, strict), then expand
prompt `exec(cmd)`.

The environment's settings live in `config.jinja` (doctor checks templates with the same ones).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import minijinja

from vik_tui.config.jinja import TEMPLATE_NAME, environment, freeze, shquote, vik_text
from vik_tui.engine.processes.proc import ShellRunner, describe_exit, local_shell, tail

__all__ = ["shquote"]  # re-exported: hooks quote tracker text with it

EXEC_PATTERN = re.compile(r"!?`exec\((.*?)\)`", re.DOTALL)
EXEC_TIMEOUT_SEC = 30.0
EXEC_MAX_BYTES = 4 * 1024 * 1024  # an exec() printing more fails the render (memory stays bounded)


class TemplateError(Exception):
    """A template that cannot be rendered; the message says which and why."""


_ENV = environment()


def build_context(
    issue_fields: dict[str, Any],
    stage: str | None,
    workdir: str | PurePath,
    workspace_root: str | PurePath,
    workflow_path: Path,
) -> dict[str, Any]:
    """The variables every hook and prompt sees (docs/architecture.md §3, "Workspace, hooks and prompt").

    `stage=None` (after_create, which runs once per issue) leaves `issue.stage` undefined, as vik does.
    """
    issue = dict(issue_fields)
    issue["workdir"] = str(workdir)
    if stage is None:
        issue.pop("stage", None)
    else:
        issue["stage"] = stage
    return {
        "issue": issue,
        "workspace_root": str(workspace_root),
        "workflow_path": str(workflow_path),
        "workflow_dir": str(workflow_path.parent),
        "env": dict(os.environ),
    }


def without_stage(context: dict[str, Any]) -> dict[str, Any]:
    """The same context with `issue.stage` undefined: after_create's, as vik builds it."""
    issue = {k: v for k, v in context["issue"].items() if k != "stage"}
    return {**context, "issue": issue}


def pull_context(workflow_path: Path, workspace_root: Path) -> dict[str, Any]:
    """What the pull command sees (vik: the workflow's paths and `env`, no `issue`)."""
    return {
        "workflow_path": str(workflow_path),
        "workflow_dir": str(workflow_path.parent),
        "workspace_root": str(workspace_root),
        "env": dict(os.environ),
    }


def render(source: str, context: dict[str, Any], name: str = "template") -> str:
    """Render strictly: an unknown variable is an error naming it."""
    return _render_with(_ENV, source, context, name)


def _render_with(env: minijinja.Environment, source: str, context: dict[str, Any], name: str) -> str:
    try:
        return env.render_str(source, TEMPLATE_NAME, **freeze(context))
    except minijinja.TemplateError as exc:
        raise TemplateError(describe_template_error(exc, name)) from None
    except Exception as exc:  # a filter may raise anything on a bad value
        raise TemplateError(f"{name}: {type(exc).__name__}: {exc}") from None


def describe_template_error(exc: minijinja.TemplateError, name: str) -> str:
    """One line: which template, what kind of problem, where, without MiniJinja's source excerpt."""
    detail = exc.detail or exc.message.split("\n", 1)[0]
    where = f" at line {exc.line}" if exc.line else ""
    if exc.kind == "UndefinedError":
        return f"{name}: undefined variable{where} ({detail})"
    if exc.kind == "SyntaxError":
        return f"{name}: template syntax error{where}: {detail}"
    if exc.kind == "OutOfFuel":
        return f"{name}: template ran too long (a runaway loop?){where}"
    return f"{name}: {detail}{where}"


async def expand_exec(
    text: str, cwd: Path | str, timeout_sec: float = EXEC_TIMEOUT_SEC, *, shell: ShellRunner = local_shell
) -> str:
    """Replace each ``!`exec(cmd)` `` / `` `exec(cmd)` `` with cmd's stdout (one trailing newline trimmed)."""
    return await _expand(text, str(cwd), timeout_sec, lambda part: part, shell)


async def _expand(text: str, cwd: str, timeout_sec: float, restore: Callable[[str], str], shell: ShellRunner) -> str:
    parts: list[str] = []
    last = 0
    for match in EXEC_PATTERN.finditer(text):
        parts.append(restore(text[last : match.start()]))
        parts.append(await _run_exec(restore(match.group(1)), cwd, timeout_sec, shell))
        last = match.end()
    parts.append(restore(text[last:]))
    return "".join(parts)


async def _run_exec(command: str, cwd: str, timeout_sec: float, shell: ShellRunner) -> str:
    try:
        run = await shell(command, cwd, timeout_sec, stdout_limit=EXEC_MAX_BYTES, stdout_cap=True)
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


def _shield(value: Any) -> str:
    return vik_text(value).translate(_SHIELD)


def _unshield(text: str) -> str:
    return _UNSHIELD.sub(lambda m: "`" if m.group(1) == "\ue001" else _MARK, text)


_PROMPT_ENV = environment(finalizer=_shield)


async def render_prompt(
    source: str,
    context: dict[str, Any],
    cwd: Path | str,
    name: str = "prompt",
    exec_timeout_sec: float = EXEC_TIMEOUT_SEC,
    *,
    shell: ShellRunner = local_shell,
) -> str:
    """MiniJinja first, then exec expansion with `cwd` as the working directory (the supervisor
    passes its own, as vik runs exec() in its process's directory; on an SSH host, the issue's
    workspace there), run by `shell` (this machine unless told otherwise).

    Only `exec(...)` written in the prompt source runs; one arriving inside a substituted value
    (an issue title, say) stays literal text.
    """
    rendered = _render_with(_PROMPT_ENV, source, context, name)
    return await _expand(rendered, str(cwd), exec_timeout_sec, _unshield, shell)
