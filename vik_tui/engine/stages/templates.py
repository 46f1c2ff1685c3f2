"""Render hooks, prompts and the pull command with vik's engine (MiniJinja, strict), then expand
prompt `exec(cmd)`.

The environment's settings live in `config.jinja` (doctor checks templates with the same ones).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from vik_tui.config.jinja import TEMPLATE_NAME, environment, plain_text, rendered_plain, shquote, with_context
from vik_tui.config.render_child import RENDER_LOCK, RENDER_MAX_BYTES, RenderRefused, render_bounded, too_long
from vik_tui.engine.processes.proc import ShellRunner, describe_exit, local_shell, tail

if TYPE_CHECKING:
    import minijinja

__all__ = ["shquote"]  # re-exported: hooks quote tracker text with it

EXEC_PATTERN = re.compile(r"!?`exec\((.*?)\)`", re.DOTALL)
EXEC_TIMEOUT_SEC = 30.0
EXEC_MAX_BYTES = 4 * 1024 * 1024  # an exec() printing more fails the render (memory stays bounded)


class TemplateError(Exception):
    """A template that cannot be rendered; the message says which and why."""


@functools.cache
def _env() -> minijinja.Environment:
    """The engine's environment, made at the first template with syntax in it (a template
    without any is rendered without MiniJinja: `config.jinja.plain_text`)."""
    return environment()


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
    issue = {key: _valid_text(value) for key, value in issue_fields.items()}
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


_SURROGATE = re.compile(r"[\x00\ud800-\udfff]")


def _valid_text(value: Any) -> Any:
    """Tracker text with each lone surrogate (valid JSON, not valid Unicode) and NUL as U+FFFD:
    the template engine cannot take a surrogate (the render failed), and no argument, hook
    script or environment can carry NUL (the stage failed as `internal error: ValueError:
    embedded null byte`)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_valid_text(k): _valid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_text(item) for item in value]
    return value


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
    """Render strictly: an unknown variable is an error naming it. The render runs in a child
    process with bounded memory and output (`render_child`)."""
    return _bounded(lambda: _render_here(source, context, name), name, source)


async def render_async(source: str, context: dict[str, Any], name: str = "template") -> str:
    """`render` off the event loop: a fork and its wait (7-40 ms, more for a heavy template)
    must not hold up every session's streaming."""
    return await asyncio.to_thread(render, source, context, name)


def _render_here(source: str, context: dict[str, Any], name: str, written: str | None = None) -> str:
    """Render `source`; an error quotes `written` (the source as its author wrote it, when
    `source` was marked up first), or `source` itself."""
    if plain_text(source):
        return rendered_plain(source)
    import minijinja

    try:
        return _env().render_str(with_context(source, context), TEMPLATE_NAME)
    except minijinja.TemplateError as exc:
        raise TemplateError(describe_template_error(exc, name, written or source, context)) from None
    except Exception as exc:  # a filter may raise anything on a bad value
        raise TemplateError(f"{name}: {type(exc).__name__}: {exc}") from None


# `{{ issue.title }}`, `{{ issue.id | shquote }}`: text that can grow no larger than the data
_PLAIN_EXPR = re.compile(r"\{\{-?\s*[A-Za-z_][\w.]*\s*(?:\|\s*(?:shquote|trim|lower|upper|string)\s*)*-?\}\}")


def _plain(source: str) -> bool:
    """Only plain substitutions: no statement, no operator, no call, so the output is at most
    the source and the values it names; rendered in the process (a fork costs 7-40 ms)."""
    return "{%" not in source and "{#" not in source and "{{" not in _PLAIN_EXPR.sub("", source)


def _bounded(render_fn: Callable[[], str], name: str, source: str) -> str:
    """`render_fn` in a child process with bounded memory (`render_child`), unless the source is
    plain; either way an output over RENDER_MAX_BYTES is refused."""
    try:
        if not _plain(source):
            _env()  # made here, not again in each child
            return render_bounded(render_fn, (TemplateError,))
        with RENDER_LOCK:  # no fork for another render while this one holds the engine's lock
            text = render_fn()
    except RenderRefused as exc:
        raise TemplateError(f"{name}: template {exc}") from None
    if len(text) > RENDER_MAX_BYTES:
        raise TemplateError(f"{name}: template {too_long(len(text))}")
    return text


def describe_template_error(
    exc: minijinja.TemplateError, name: str, source: str = "", context: dict[str, Any] | None = None
) -> str:
    """One line: which template, what kind of problem, where, without MiniJinja's source excerpt."""
    detail = exc.detail or exc.message.split("\n", 1)[0]
    where = f" at line {exc.line}" if exc.line else ""
    if exc.kind == "UndefinedError":
        missing = _missing_names(source, context or {})
        named = f"`{missing[0]}` is undefined" if missing else detail
        return f"{name}: undefined variable{where} ({named})"
    if exc.kind == "SyntaxError":
        return f"{name}: template syntax error{where}: {detail}"
    if exc.kind == "OutOfFuel":
        return f"{name}: template ran too long (a runaway loop?){where}"
    return f"{name}: {detail}{where}"


def _missing_names(source: str, context: dict[str, Any]) -> list[str]:
    """The dotted names the template reads that its context lacks (MiniJinja 2.19 does not name
    them), shortest first: `issue.nope`, `env.UNSET`, `who`."""
    import minijinja

    try:
        names = _env().undeclared_variables_in_str(source, nested=True)
    except minijinja.TemplateError:
        return []
    missing = []
    for dotted in sorted(names, key=lambda n: (n.count("."), n)):
        node: Any = context
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    return missing


async def expand_exec(
    text: str, cwd: Path | str, timeout_sec: float = EXEC_TIMEOUT_SEC, *, shell: ShellRunner = local_shell
) -> str:
    """Replace each ``!`exec(cmd)` `` / `` `exec(cmd)` `` with cmd's stdout (one trailing newline trimmed)."""
    return await _expand(text, EXEC_PATTERN, str(cwd), timeout_sec, shell)


async def _expand(text: str, pattern: re.Pattern[str], cwd: str, timeout_sec: float, shell: ShellRunner) -> str:
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(text[last : match.start()])
        parts.append(await _run_exec(match.group(1), cwd, timeout_sec, shell))
        last = match.end()
    parts.append(text[last:])
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


# Only an exec() written in the prompt's own text may run, never one arriving in the data
# (a tracker title, say): before rendering, the source's exec() markers are swapped for ones
# with a fresh random nonce, and only those are expanded afterwards. The data is not touched, so
# a template sees exactly the values vik's would.
def _nonce_markers(source: str) -> tuple[str, re.Pattern[str]]:
    nonce = secrets.token_hex(8)
    start, end = f"@@exec-{nonce}(", f")exec-{nonce}@@"
    marked = EXEC_PATTERN.sub(lambda m: f"{start}{m.group(1)}{end}", source)
    return marked, re.compile(re.escape(start) + "(.*?)" + re.escape(end), re.DOTALL)


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
    marked, pattern = _nonce_markers(source)
    render_here = functools.partial(_render_here, marked, context, name, source)
    rendered = await asyncio.to_thread(_bounded, render_here, name, source)
    prompt = await _expand(rendered, pattern, str(cwd), exec_timeout_sec, shell)
    if len(prompt) > RENDER_MAX_BYTES:  # the exec() outputs spliced in took it over
        raise TemplateError(
            f"{name}: the prompt is {len(prompt) / 2**20:.1f} MiB with its exec() output,"
            f" over the {RENDER_MAX_BYTES // 2**20} MiB limit"
        )
    return prompt
