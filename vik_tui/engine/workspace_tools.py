"""What a human does in an issue workspace: open a shell there, read its `git diff`.

These live in the engine because the UI never spawns processes itself; it calls these.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path


def user_shell() -> str:
    return os.environ.get("SHELL") or shutil.which("bash") or "/bin/sh"


def inside_tmux() -> bool:
    return bool(os.environ.get("TMUX")) and shutil.which("tmux") is not None


def open_tmux_split(workdir: Path) -> tuple[bool, str]:
    """Open `$SHELL` in a new tmux pane beside the app, starting in `workdir`."""
    try:
        completed = subprocess.run(
            ["tmux", "split-window", "-h", "-c", str(workdir), user_shell()],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"tmux split-window failed: {exc}"
    if completed.returncode != 0:
        return False, f"tmux split-window failed: {completed.stderr.strip() or completed.returncode}"
    return True, f"opened a shell in {workdir} (tmux pane)"


def run_shell_foreground(workdir: Path) -> int:
    """Run `$SHELL` in `workdir` attached to the terminal until the user exits it."""
    try:
        return subprocess.call([user_shell()], cwd=str(workdir))
    except OSError as exc:
        print(f"vik-tui: cannot start shell: {exc}")
        return 127


async def git_diff(workdir: Path, timeout_sec: float = 20.0) -> str:
    """`git diff` (tracked changes plus untracked file names) of a workspace, as text."""
    if not workdir.is_dir():
        return f"(workspace {workdir} does not exist yet)"
    if shutil.which("git") is None:
        return "(git is not installed)"
    chunks: list[str] = []
    for args in (["git", "diff", "--stat", "HEAD"], ["git", "diff", "HEAD"], ["git", "status", "--short"]):
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=str(workdir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_sec)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return f"(`{' '.join(args)}` timed out)"
        text = out.decode("utf-8", "replace")
        if proc.returncode != 0 and "HEAD" in args:
            # no commit yet: fall back to the plain working-tree diff
            continue
        chunks.append(f"$ {' '.join(args)}\n{text}")
    return "\n".join(chunks) if chunks else "(not a git repository)"
