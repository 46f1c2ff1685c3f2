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
import errno
import os
import signal
from collections.abc import Mapping, Sequence
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


# $0: cgroup.procs; "$@": the program and its arguments
_JOIN_AND_EXEC = 'echo 0 2>/dev/null >"$0"; exec "$@"'


def _resolve(program: str, path: str, cwd: Path) -> str:
    """The file `execvp(program)` would run (with the child's PATH and cwd), or its error."""
    if "/" in program:
        candidates = [cwd / program]
    else:
        candidates = [(cwd / entry if entry else cwd) / program for entry in path.split(os.pathsep)]
    denied = False
    for candidate in candidates:
        if candidate.is_file():
            if os.access(candidate, os.X_OK):
                return str(candidate)
            denied = True
        elif candidate.exists():  # a directory
            denied = True
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


class StageCgroup:
    """One stage attempt's cgroup: its agent joins it at exec (`command`), and
    `kill()` ends every one of them, `setsid`, `env -i` and double-forked alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._procs = str(path / "cgroup.procs")

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: Path) -> list[str]:
        """`argv` started so that it joins the cgroup before it runs: `/bin/sh` writes its own
        pid to `cgroup.procs`, then execs the program (same pid, nothing forked in between).

        A `preexec_fn` would do the same in Python, but CPython must then fork the whole
        supervisor (page tables copied, every page it writes afterwards faulted and copied:
        ~2 ms of its CPU per agent at 50 MiB, and its loop stopped meanwhile) instead of
        vfork-ing; the shell's start-up is the agent's own CPU. The program is looked up here,
        as `execvp` would, so a missing or non-executable one raises the same
        FileNotFoundError/PermissionError as before. Joining that fails (the cgroup removed
        under us) leaves the agent to its mark, as on a host without cgroups."""
        program = _resolve(argv[0], (env if env is not None else os.environ).get("PATH", os.defpath), cwd)
        return ["/bin/sh", "-c", _JOIN_AND_EXEC, self._procs, program, *argv[1:]]

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
