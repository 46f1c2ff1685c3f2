"""Process-group helpers: every child we start gets its own group, and we kill the group."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


def tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text`."""
    return text[-limit:] if len(text) > limit else text


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group led by `pid`; False when it is already gone."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` exists."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


async def wait_group_gone(pgid: int, timeout_sec: float) -> bool:
    """Poll until no process of the group remains (grandchildren included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_sec
    delay = 0.01
    while group_alive(pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


async def kill_group(proc: asyncio.subprocess.Process, grace_sec: float) -> None:
    """SIGTERM the whole group, SIGKILL whatever is left after `grace_sec`, reap the leader."""
    loop = asyncio.get_running_loop()
    pgid = proc.pid
    deadline = loop.time() + grace_sec
    signal_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), max(0.0, deadline - loop.time()))
    except asyncio.TimeoutError:
        pass
    if not await wait_group_gone(pgid, max(0.0, deadline - loop.time())):
        signal_group(pgid, signal.SIGKILL)
    await proc.wait()
    if not await wait_group_gone(pgid, 2.0):
        signal_group(pgid, signal.SIGKILL)
        await wait_group_gone(pgid, 2.0)


def describe_exit(returncode: int | None) -> str:
    """`exited with code 3` / `was killed by signal 9 (SIGKILL)` for a Popen-style return code."""
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-returncode}{name}"
    return f"exited with code {returncode}"


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Knows when the process itself exits, even while a leftover child still holds its pipes
    (`Process.wait()` only returns once every pipe is closed)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


@dataclass(frozen=True)
class ShellRun:
    """How a bounded `sh -c` run ended."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    leftovers_killed: bool = False  # the shell exited but children kept its pipes open


async def run_shell(
    script: str, cwd: Path, timeout_sec: float, grace_sec: float = 1.0, drain_sec: float = 1.0,
) -> ShellRun:
    """Run `sh -c script` in `cwd` in its own process group, stdin closed, output captured.

    On timeout (or cancellation) the whole group gets SIGTERM, then SIGKILL after `grace_sec`.
    When the shell exits but children it left behind still hold stdout/stderr open, they get
    `drain_sec` to finish and are then killed the same way, so a caller never hangs on them.
    Raises OSError when `sh` cannot be started (for example a missing `cwd`).
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitAwareProtocol(2**16, loop), "sh", "-c", script, cwd=str(cwd),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    reader = asyncio.ensure_future(proc.communicate())
    try:
        try:
            await asyncio.wait_for(protocol.exited.wait(), timeout_sec)
        except asyncio.TimeoutError:
            await kill_group(proc, grace_sec)
            out, err = await _collect(reader)
            return ShellRun(proc.returncode, out, err, timed_out=True)
        leftovers = False
        try:
            out, err = await asyncio.wait_for(asyncio.shield(reader), drain_sec)
        except asyncio.TimeoutError:
            leftovers = True
            await kill_group(proc, grace_sec)
            out, err = await _collect(reader)
        return ShellRun(proc.returncode, out, err, leftovers_killed=leftovers)
    except BaseException:  # cancelled: nothing we started may outlive us
        if not reader.done():
            await asyncio.shield(kill_group(proc, grace_sec))
            reader.cancel()
        raise


async def _collect(reader: "asyncio.Future[tuple[bytes, bytes]]") -> tuple[bytes, bytes]:
    """The output of a process whose group is already dead (pipes closed, so this is quick)."""
    try:
        return await asyncio.wait_for(asyncio.shield(reader), 2.0)
    except asyncio.TimeoutError:  # a child escaped the group (setsid) and holds the pipe
        reader.cancel()
        return b"", b""
