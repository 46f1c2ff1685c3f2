"""Run a hook script with `sh -c` in the issue workspace, bounded by a timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from vik_tui.engine.proc import kill_group, tail

TAIL_CHARS = 2000


@dataclass(frozen=True)
class HookResult:
    name: str
    ok: bool
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str
    timed_out: bool = False
    error: str | None = None

    @property
    def summary(self) -> str:
        if self.ok:
            return f"hook {self.name} succeeded"
        if self.error:
            return f"hook {self.name} failed: {self.error}"
        if self.timed_out:
            return f"hook {self.name} timed out"
        detail = self.stderr_tail.strip().splitlines()[-1:] or [""]
        return f"hook {self.name} exited with code {self.exit_code}" + (f": {detail[0]}" if detail[0] else "")


async def run_hook(name: str, script: str, cwd: Path, timeout_sec: float, grace_sec: float = 2.0) -> HookResult:
    """Run one hook; on timeout its whole process group is killed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", script, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        return HookResult(name, False, None, "", "", error=f"could not start: {exc}")
    reader = asyncio.ensure_future(proc.communicate())
    try:
        out, err = await asyncio.wait_for(asyncio.shield(reader), timeout_sec)
    except asyncio.TimeoutError:
        await kill_group(proc, grace_sec=grace_sec)
        out, err = await _drain(reader)
        return HookResult(
            name, False, proc.returncode, _text(out), _text(err), timed_out=True,
            error=f"timed out after {timeout_sec:g}s (process group killed)",
        )
    except asyncio.CancelledError:
        await kill_group(proc, grace_sec=grace_sec)
        reader.cancel()
        raise
    return HookResult(name, proc.returncode == 0, proc.returncode, _text(out), _text(err))


async def _drain(reader: asyncio.Future[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(reader, 2.0)
    except (asyncio.TimeoutError, Exception):
        reader.cancel()
        return b"", b""


def _text(data: bytes | None) -> str:
    return tail((data or b"").decode("utf-8", "replace"), TAIL_CHARS)
