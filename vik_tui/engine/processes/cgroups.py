"""One cgroup v2 per stage where the tree is writable: nothing the agent starts escapes it.

Marks (`descendants`) find every process that keeps its environment; one started with `env -i`
under `setsid` loses both its group and its mark and outlived the stage and the supervisor. A
cgroup is inherited whatever a process does to its environment, session or group, and writing
`1` to `cgroup.kill` ends every process in it at once (Linux 5.14+; before that, each pid in
`cgroup.procs` is sent SIGKILL). This is what systemd's `KillMode=control-group` relies on.

Shell runs (hooks, exec() in prompts, the pull command) get a cgroup each too, from the
`RunCgroups` of their scope (`SHELL_CGROUPS`, a context variable set by the stage attempt and
by the intake): a timeout or a stop kills it, and what a run left in the background on purpose
is killed when its scope ends (the attempt), as the marks do.

Where the tree is not writable (not root, no delegated slice, cgroup v1 only), `Cgroups.open`
returns None and the marks are all there is, as before. On a hybrid host the v2 tree is at
`/sys/fs/cgroup/unified`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from contextvars import ContextVar
from pathlib import Path

MOUNTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
PREFIX = "vik-tui-"


def _own_v2_path() -> str | None:
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


class Cgroups:
    """`<our cgroup>/vik-tui-<supervisor id>/`: one child cgroup per stage attempt."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def open(cls, supervisor_id: str) -> Cgroups | None:
        own = _own_v2_path()
        if own is None:
            return None
        for mount in MOUNTS:
            if not (mount / "cgroup.procs").exists() or not (mount / "cgroup.controllers").exists():
                continue
            directory = mount / own.lstrip("/") / f"{PREFIX}{supervisor_id}"
            try:
                directory.mkdir()
            except FileExistsError:
                return cls(directory)
            except OSError:
                continue
            return cls(directory)
        return None

    def stage(self, name: str) -> StageCgroup | None:
        path = self.directory / name
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return StageCgroup(path)

    async def kill(self) -> list[int]:
        """Kill whatever is left in every child cgroup (the supervisor ends); the pids killed."""
        killed: list[int] = []
        with contextlib.suppress(OSError):
            for child in list(self.directory.iterdir()):
                if child.is_dir():
                    killed += await StageCgroup(child).kill()
        return killed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            for child in self.directory.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            self.directory.rmdir()


class StageCgroup:
    """One stage attempt's cgroup: processes join it at exec (`join`, a preexec hook), and
    `kill()` ends every one of them, `setsid`, `env -i` and double-forked alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._procs = str(path / "cgroup.procs")

    def join(self) -> None:
        """In the child, between fork and exec: move this process into the cgroup."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def try_join(self) -> None:
        """`join`, but a cgroup that cannot be joined leaves the process where it is (its group
        and mark still reach it) rather than fail the run."""
        with contextlib.suppress(OSError):
            self.join()

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in Path(self._procs).read_text().split()]
        except (OSError, ValueError):
            return []

    async def kill(self, timeout_sec: float = 5.0) -> list[int]:
        """SIGKILL everything in the cgroup, wait until it is empty, remove it; the pids killed."""
        pids = self.pids()
        if pids:
            try:
                (self.path / "cgroup.kill").write_text("1")
            except OSError:
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_sec
            while self.pids() and loop.time() < deadline:
                await asyncio.sleep(0.02)
        with contextlib.suppress(OSError):
            self.path.rmdir()
        return pids


class RunCgroups:
    """The cgroups of one scope's shell runs (a stage attempt's hooks and exec(), the intake's
    pulls): one per run, named `<prefix>-<n>` under the supervisor's cgroup."""

    def __init__(self, root: Cgroups, prefix: str) -> None:
        self.root = root
        self.prefix = prefix
        self._runs: list[StageCgroup] = []
        self._count = 0

    def new(self) -> StageCgroup | None:
        self._count += 1
        cgroup = self.root.stage(f"{self.prefix}-{self._count}")
        if cgroup is not None:
            self._runs.append(cgroup)
        return cgroup

    def done(self, cgroup: StageCgroup) -> None:
        """A run ended: its cgroup goes if it is empty; what it left running stays (and stays
        in it) until the scope ends."""
        if not cgroup.pids():
            with contextlib.suppress(OSError):
                cgroup.path.rmdir()
            with contextlib.suppress(ValueError):
                self._runs.remove(cgroup)

    async def kill(self) -> list[int]:
        """The scope ends: everything its runs left, killed; the pids."""
        killed: list[int] = []
        while self._runs:
            killed += await self._runs.pop().kill()
        return killed


SHELL_CGROUPS: ContextVar[RunCgroups | None] = ContextVar("vik_tui_shell_cgroups", default=None)
