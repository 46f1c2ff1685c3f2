"""What a human does in an issue workspace: open a shell there, read its `git diff`.

These live in the engine because the UI never spawns processes itself; it calls these.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path


def user_shell() -> str:
    return os.environ.get("SHELL") or shutil.which("bash") or "/bin/sh"


def inside_tmux() -> bool:
    return bool(os.environ.get("TMUX")) and shutil.which("tmux") is not None


def split_tmux(cwd: Path, command: str, done: str) -> tuple[bool, str]:
    """Run `command` (a shell command line) in a new tmux pane beside the app, starting in `cwd`,
    so the UI keeps streaming; (ok, what to tell the user)."""
    try:
        completed = subprocess.run(
            ["tmux", "split-window", "-h", "-c", str(cwd), command],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"tmux split-window failed: {exc}"
    if completed.returncode != 0:
        return False, f"tmux split-window failed: {completed.stderr.strip() or completed.returncode}"
    return True, done


async def _git(workdir: Path, *args: str, timeout_sec: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=str(workdir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_sec)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, f"(`git {' '.join(args)}` timed out)"
    return proc.returncode or 0, out.decode("utf-8", "replace")


MAX_UNTRACKED = 20


async def git_diff(workdir: Path, timeout_sec: float = 20.0) -> str:
    """What changed in a workspace here: `git status`, the diff of tracked files, and new files in full."""
    if not workdir.is_dir():
        return f"(workspace {workdir} does not exist yet)"
    if shutil.which("git") is None:
        return "(git is not installed)"

    async def git(args: Sequence[str], timeout: float) -> tuple[int, str]:
        return await _git(workdir, *args, timeout_sec=timeout)

    return await diff_report(git, str(workdir), timeout_sec)


# runs `git ARGS` in the workspace, wherever it is: (exit code, stdout and stderr merged)
GitRunner = Callable[[Sequence[str], float], Awaitable[tuple[int, str]]]


async def diff_report(git: GitRunner, where: str, timeout_sec: float = 20.0) -> str:
    """`git status`, the diff of tracked files against HEAD, and untracked files as additions."""
    code, status = await git(("status", "--short"), timeout_sec)
    if code != 0:
        return f"(not a git repository: {where})\n{status}"
    parts = [f"$ git status --short\n{status or '(clean)'}"]
    has_head = (await git(("rev-parse", "--verify", "-q", "HEAD"), timeout_sec))[0] == 0
    code, diff = await git(("diff", "HEAD" if has_head else "--cached"), timeout_sec)
    if diff.strip():
        parts.append(diff)
    _, untracked = await git(("ls-files", "--others", "--exclude-standard"), timeout_sec)
    names = [n for n in untracked.splitlines() if n][:MAX_UNTRACKED]
    for name in names:  # new files: show them as additions (git exits 1 when they differ)
        _, text = await git(("diff", "--no-index", "--", "/dev/null", name), timeout_sec)
        parts.append(text)
    return "\n".join(parts)
