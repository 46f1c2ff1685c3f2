"""Process-group helpers: every child we start gets its own group, and we kill the group."""

from __future__ import annotations

import asyncio
import os
import signal


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
