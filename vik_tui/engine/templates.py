"""Render hooks and prompts: sandboxed, strict Jinja2, then prompt `exec(cmd)` expansion."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from vik_tui.engine.proc import kill_group, tail

EXEC_PATTERN = re.compile(r"!?`exec\((.*?)\)`", re.DOTALL)
EXEC_TIMEOUT_SEC = 30.0


class TemplateError(Exception):
    """A template that cannot be rendered; the message says which and why."""


def shquote(value: Any) -> str:
    """Quote tracker text for a POSIX shell, so hooks can embed it safely."""
    return shlex.quote("" if value is None else str(value))


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["shquote"] = shquote
    return env


_ENV = _environment()


def build_context(
    issue_fields: dict[str, Any], stage: str | None, workdir: Path, workspace_root: Path, workflow_path: Path,
) -> dict[str, Any]:
    """The variables every hook and prompt sees (DESIGN §2)."""
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
    try:
        return _ENV.from_string(source).render(context)
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
    parts: list[str] = []
    last = 0
    for match in EXEC_PATTERN.finditer(text):
        parts.append(text[last:match.start()])
        parts.append(await _run_exec(match.group(1), cwd, timeout_sec))
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


async def _run_exec(command: str, cwd: Path, timeout_sec: float) -> str:
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", command, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_sec)
    except asyncio.TimeoutError:
        await kill_group(proc, grace_sec=1.0)
        raise TemplateError(f"prompt exec({command}) timed out after {timeout_sec:g}s") from None
    except asyncio.CancelledError:
        await kill_group(proc, grace_sec=1.0)
        raise
    if proc.returncode != 0:
        detail = tail(err.decode("utf-8", "replace").strip(), 500)
        raise TemplateError(f"prompt exec({command}) exited with code {proc.returncode}" + (f": {detail}" if detail else ""))
    output = out.decode("utf-8", "replace")
    return output[:-1] if output.endswith("\n") else output


async def render_prompt(source: str, context: dict[str, Any], cwd: Path, name: str = "prompt") -> str:
    """Jinja first, then exec expansion in the issue workspace."""
    return await expand_exec(render(source, context, name), cwd)
