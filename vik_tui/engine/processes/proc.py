"""Process-group helpers: every child we start gets its own group, and we kill the group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vik_tui.engine.processes.cgroups import SHELL_CGROUPS
from vik_tui.engine.processes.descendants import Mark, kill_marked, mark_for_run


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
    """True while any *running* process of group `pgid` exists.

    Zombies do not count: a killed grandchild stays a zombie until its new parent (often a
    container's PID 1 that reaps lazily) collects it, yet it holds nothing and runs nothing.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust kill(0)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


async def _wait_until(condition: Callable[[], bool], timeout_sec: float) -> bool:
    """Poll `condition` (10 ms growing to 100 ms) until it holds or `timeout_sec` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_sec
    delay = 0.01
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


async def wait_group_gone(pgid: int, timeout_sec: float) -> bool:
    """Poll until no process of the group remains (grandchildren included)."""
    return await _wait_until(lambda: not group_alive(pgid), timeout_sec)


async def kill_group(proc: asyncio.subprocess.Process, grace_sec: float) -> None:
    """SIGTERM the whole group, SIGKILL whatever is left after `grace_sec`, make sure the leader exited.

    Waits for the leader's *exit*, not for `proc.wait()`: on Python 3.11 that only returns once
    every pipe is closed, which never happens while a process that left the group (`setsid`)
    still holds one.
    """
    pgid = proc.pid
    signal_group(pgid, signal.SIGTERM)
    await _wait_until(lambda: proc.returncode is not None and not group_alive(pgid), grace_sec)
    if proc.returncode is None or group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)
    await _wait_until(lambda: proc.returncode is not None, 5.0)
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
    """How a bounded `sh -c` run ended. `stdout`/`stderr` hold at most their limits (the tail,
    or for a capped stdout the first bytes); `over_limit` says a capped stdout went past it."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    over_limit: bool = False
    held_pipes: bool = False  # the shell exited but something it left kept its output open: killed


class Bounded:
    """Output kept within `limit` bytes: the last ones (`cap=False`), or the first ones and a flag
    once more arrived (`cap=True`, for output that is useless when cut, like a JSON array)."""

    def __init__(self, limit: int, cap: bool = False) -> None:
        self.limit = limit
        self.cap = cap
        self.over = asyncio.Event()
        self._data = bytearray()

    def add(self, chunk: bytes) -> bool:
        """Keep what fits; False once a capped buffer is over its limit (stop reading)."""
        if self.cap:
            room = self.limit - len(self._data)
            self._data += chunk[: max(room, 0)]
            if len(chunk) > room:
                self.over.set()
                return False
            return True
        self._data += chunk
        if len(self._data) > 2 * self.limit:  # trim in steps: amortised linear, never above 2x
            del self._data[: len(self._data) - self.limit]
        return True

    def value(self) -> bytes:
        if not self.cap and len(self._data) > self.limit:
            extra = len(self._data) - self.limit
            return bytes(self._data[extra:])
        return bytes(self._data)


OUTPUT_TAIL_BYTES = 64 * 1024  # what a hook, pull or exec keeps of an output it only reports


async def run_shell(
    script: str,
    cwd: Path,
    timeout_sec: float,
    grace_sec: float = 1.0,
    drain_sec: float = 1.0,
    *,
    mark: Mark | None = None,
    stdout_limit: int = OUTPUT_TAIL_BYTES,
    stdout_cap: bool = False,
    stderr_limit: int = OUTPUT_TAIL_BYTES,
) -> ShellRun:
    """Run `sh -c script` in `cwd` in its own process group, stdin closed, output captured.

    Memory is bounded whatever the script prints: stdout keeps its last `stdout_limit` bytes
    (or, with `stdout_cap`, its first ones, and the run is stopped as `over_limit` once it
    printed more), stderr its last `stderr_limit` bytes.

    On timeout (or cancellation) the whole group gets SIGTERM, then SIGKILL after `grace_sec`.
    When the shell exits but children it left behind still hold stdout/stderr open, they get
    `drain_sec` to finish and are then killed the same way (`held_pipes`), so a caller never
    hangs on them. Every kill also reaches the run's descendants that left the group (`setsid`):
    the run is marked under `mark`, else under the current `descendants.OWNER`, if any; and
    where the scope has cgroups (`cgroups.SHELL_CGROUPS`) the run has its own, so even an
    `env -i setsid` descendant is killed. Output read before a kill is kept. Raises OSError
    when `sh` cannot be started (a missing `cwd`).
    """
    loop = asyncio.get_running_loop()
    mark = mark_for_run(mark)
    cgroups = SHELL_CGROUPS.get()
    group = cgroups.new() if cgroups is not None else None
    env = mark.env() if mark is not None else None
    argv = ["sh", "-c", script]
    # the run joins its cgroup by exec (`StageCgroup.command`), not a `preexec_fn`, which would
    # make CPython fork the whole supervisor instead of vfork-ing; a failed join is tolerated
    spawn = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _ExitAwareProtocol(2**16, loop),
            *(group.command(argv, env, Path(cwd)) if group is not None else argv),
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    )

    async def kill_all(proc: asyncio.subprocess.Process) -> None:
        await kill_group(proc, grace_sec)
        if mark is not None:
            await kill_marked([mark.value], grace_sec, ours=True)
        if group is not None:
            await group.kill()

    try:
        transport, protocol = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # cancelled while asyncio still connects the pipes: it would SIGKILL `sh` alone and its
        # children would live on, so let the spawn finish and kill the whole group
        with contextlib.suppress(OSError):
            transport, protocol = await spawn
            await kill_all(asyncio.subprocess.Process(transport, protocol, loop))
            transport.close()
        raise
    except BaseException:
        if cgroups is not None and group is not None:
            cgroups.done(group)
        raise
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    out, err = Bounded(stdout_limit, cap=stdout_cap), Bounded(stderr_limit)
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))
    timed_out = over_limit = held_pipes = False
    exited = asyncio.ensure_future(protocol.exited.wait())
    overflow = asyncio.ensure_future(out.over.wait())
    try:
        await asyncio.wait({exited, overflow}, timeout=timeout_sec, return_when=asyncio.FIRST_COMPLETED)
        if overflow.done():
            over_limit = True
            await kill_all(proc)
        elif not exited.done():
            timed_out = True
            await kill_all(proc)
        else:
            try:
                await asyncio.wait_for(asyncio.shield(readers), drain_sec)
            except TimeoutError:  # the shell exited but children it left keep its pipes open
                held_pipes = True
                await kill_all(proc)
        if not readers.done():
            # the group is dead, so EOF is near, unless a process that left the group holds a pipe
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(readers), 2.0)
    except BaseException:  # cancelled: nothing we started may outlive us
        if proc.returncode is None or not readers.done():
            await asyncio.shield(kill_all(proc))
        raise
    finally:
        exited.cancel()
        overflow.cancel()
        readers.cancel()
        transport.close()
        if cgroups is not None and group is not None:
            cgroups.done(group)
    return ShellRun(
        proc.returncode,
        out.value(),
        err.value(),
        timed_out=timed_out,
        over_limit=over_limit,
        held_pipes=held_pipes,
    )


class ShellRunner(Protocol):
    """`run_shell`'s contract with the working directory as text: a place's `shell` (this machine
    or an SSH host) satisfies it, so hooks and exec() run wherever the issue lives."""

    async def __call__(
        self,
        script: str,
        cwd: str,
        timeout_sec: float,
        *,
        grace_sec: float = 1.0,
        stdout_limit: int = OUTPUT_TAIL_BYTES,
        stdout_cap: bool = False,
    ) -> ShellRun: ...


async def local_shell(
    script: str,
    cwd: str,
    timeout_sec: float,
    *,
    grace_sec: float = 1.0,
    stdout_limit: int = OUTPUT_TAIL_BYTES,
    stdout_cap: bool = False,
) -> ShellRun:
    """`run_shell` on this machine, as a `ShellRunner`."""
    return await run_shell(
        script, Path(cwd), timeout_sec, grace_sec=grace_sec, stdout_limit=stdout_limit, stdout_cap=stdout_cap
    )


async def _pump(stream: asyncio.StreamReader, buffer: Bounded) -> None:
    while chunk := await stream.read(65536):
        if not buffer.add(chunk):
            return  # a capped output went over its limit: the run is being stopped
