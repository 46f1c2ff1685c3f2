"""Every process we start, and everything it starts, can be found and killed, `setsid` or not.

A process group is not enough: a grandchild that calls `setsid` (a daemonising tool, `nohup`
plus `setsid`, a test runner's server) leaves it and outlives every `killpg`. So each process
the engine starts carries a *mark* in its environment, `VIK_TUI_OWNER=<supervisor>/<scope>/<run>`,
which its descendants inherit whatever group or session they move to. Killing "everything of
this stage" is then a scan of `/proc/*/environ` for the stage's prefix. (A process that wipes its
environment, `env -i`, loses the mark; nothing short of a cgroup would find it.)

The supervisor also becomes a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`, Linux): an
orphaned grandchild is re-parented to us instead of to PID 1, so it stays in our tree while it
runs, and its zombie is ours to collect (`Reaper`), not left to a container's lazy init.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import sys
import uuid
from collections.abc import Collection, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

MARK_VAR = "VIK_TUI_OWNER"
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
REAP_INTERVAL_SEC = 0.5
# while passes find no zombie the interval doubles up to this: a hundred agents' supervisor read
# its threads' children lists twice a second (~3 % of its CPU at 5 lines/s each) to find, nearly
# always, nothing; an orphan's zombie holds only a pid meanwhile
REAP_IDLE_MAX_SEC = 4.0


@dataclass(frozen=True)
class Mark:
    """Who a process belongs to: a supervisor, a scope in it (a stage attempt, intake) and a run."""

    supervisor: str
    scope: str
    run: str

    @property
    def value(self) -> str:
        return f"{self.supervisor}/{self.scope}/{self.run}"

    @property
    def scope_prefix(self) -> str:
        return f"{self.supervisor}/{self.scope}/"

    def child(self, run: str) -> Mark:
        return Mark(self.supervisor, self.scope, run)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a marked process starts with (the supervisor's own, plus the mark)."""
        env = dict(os.environ if base is None else base)
        env[MARK_VAR] = self.value
        return env


def describe_killed(pids: list[int], limit: int = 10) -> str:
    """The pids of a kill report, for one log line: at most `limit` of them, then ` ...`."""
    return ", ".join(str(pid) for pid in pids[:limit]) + (" ..." if len(pids) > limit else "")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


# The mark of whatever the current task works for: the supervisor sets it for its loop and each
# stage attempt for its own task, so a process started anywhere below (a hook, the pull command,
# a prompt's exec) is marked without being told. Tasks copy it when they are created.
OWNER: ContextVar[Mark | None] = ContextVar("vik_tui_owner", default=None)


def mark_for_run(mark: Mark | None = None) -> Mark | None:
    """A fresh mark for one process we start: under `mark`, else under the current OWNER."""
    base = mark if mark is not None else OWNER.get()
    return base.child(f"{base.run}-{new_id()[:8]}") if base is not None else None


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22): with
    the pid it names one process for ever, so a reused pid is never mistaken for ours."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def is_running(pid: int) -> bool:
    """Alive and not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] not in (b"Z", b"X")


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _mark_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read()
    except OSError:  # gone, a zombie, or not ours to read
        return None
    key = MARK_VAR.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode("utf-8", "replace")
    return None


def _ancestors() -> set[int]:
    """This process and those above it: never killed, whatever their environment says."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 2:
            break
        pid = int(fields[1])
    return pids


def _below(pid: int, apart: Collection[int] = ()) -> list[int]:
    """Every process below `pid`: each thread's children list (`/proc/<pid>/task/*/children`),
    walked down (the kernel must have them: `_has_children_lists`); `apart` and what is below
    them are left out."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # gone meanwhile
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as handle:
                    children = handle.read().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in apart:
                    found.append(child)
                    todo.append(child)
    return found


def _has_children_lists() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def find_marked(prefixes: Iterable[str], *, ours: bool = False, apart: Collection[int] = ()) -> list[int]:
    """Running processes whose mark starts with one of `prefixes` (a full mark matches itself).

    `ours`: the marks are this supervisor's own. While it is a child subreaper, every process
    carrying them is below it (an orphan is re-parented to us, not to PID 1), so only its
    descendants are read, not every process on the machine (a session's end cost a read of
    every process's environment, growing with sessions x processes). Otherwise, and for the
    marks of a supervisor that is gone (recovery), all of `/proc` is read.

    `apart` (with `ours`): children of ours that belong to other scopes than the marks', each
    with all that is below it (the other sessions' live agents, which the loop waits for): not
    read. An orphan is re-parented to its nearest subreaper *ancestor*, so what one scope left
    is never below another scope's child; a hundred agents' environments are not read at each
    session's end."""
    wanted = tuple(prefixes)
    if not wanted:
        return []
    if ours and is_subreaper() and _has_children_lists():
        candidates: Iterable[int] = _below(os.getpid(), apart)
        mine: set[int] = set()  # nothing below us is above us
    else:
        try:
            entries = os.listdir("/proc")
        except OSError:
            return []
        candidates = (int(entry) for entry in entries if entry.isdigit())
        mine = _ancestors()
    found = []
    for pid in candidates:
        if pid in mine:
            continue
        mark = _mark_of(pid)
        if mark is not None and mark.startswith(wanted) and is_running(pid):
            found.append(pid)
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def kill_marked(
    prefixes: Iterable[str], grace_sec: float, *, ours: bool = False, apart: Collection[int] = ()
) -> list[int]:
    """SIGTERM every running process carrying one of the marks, SIGKILL what is left after
    `grace_sec`; returns the pids that were found (empty when nothing was left). `ours` and
    `apart`: as for `find_marked`."""
    wanted = tuple(prefixes)
    found = find_marked(wanted, ours=ours, apart=apart)
    if not found:
        return []
    _signal_all(found, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_sec
    delay = 0.01
    while loop.time() < deadline:
        if not any(is_running(pid) for pid in found):
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    for _ in range(3):  # children forked while we waited are killed too
        left = find_marked(wanted, ours=ours, apart=apart)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        found.extend(pid for pid in left if pid not in found)
        await asyncio.sleep(0.02)
    return sorted(found)


# -- child subreaper ---------------------------------------------------------------------------
@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    try:
        return libc is not None and int(libc.prctl(option, value, 0, 0, 0)) == 0
    except AttributeError:
        return False


def is_subreaper() -> bool:
    libc = _libc()
    value = ctypes.c_int(0)
    try:
        ok = libc is not None and int(libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)) == 0
    except AttributeError:
        return False
    return ok and value.value != 0


def set_subreaper(on: bool) -> bool:
    """Become (or stop being) a child subreaper; False where the system has no such thing."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def _children() -> list[int]:
    """Our direct children (every thread's: an orphan is adopted by one of our threads)."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            fd = os.open(f"/proc/self/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError:
            continue
        finally:
            os.close(fd)
        pids.extend(map(int, b"".join(chunks).split()))
    return pids


class Reaper:
    """Collects zombies of adopted orphans while the supervisor is a subreaper.

    A zombie child is reaped only once it has stayed a zombie across two passes: a process the
    engine started itself is waited for at once by its owner (asyncio's child watcher,
    `subprocess`), so a zombie nobody collected for a whole pass is an orphan we adopted.
    """

    def __init__(
        self,
        interval_sec: float = REAP_INTERVAL_SEC,
        waited: Collection[int] = (),
        idle_max_sec: float = REAP_IDLE_MAX_SEC,
    ) -> None:
        self.interval_sec = interval_sec
        self.idle_max_sec = max(idle_max_sec, interval_sec)
        # children the event loop already waits for (`watcher.PidfdWatcher.watched`, kept up
        # to date by it): not read at each pass (a hundred agents were 200 `stat` reads a second)
        self.waited = waited
        self._seen: set[int] = set()

    def reap_once(self) -> int:
        zombies = set()
        waited = self.waited
        for pid in _children():
            if pid in waited:
                continue
            fields = _stat_fields(pid)
            if fields and fields[0] == b"Z":
                zombies.add(pid)
        count = 0
        for pid in zombies & self._seen:
            with contextlib.suppress(ChildProcessError, OSError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    count += 1
        self._seen = zombies  # the reaped ones never show again
        return count

    async def run(self) -> None:
        """A pass every `interval_sec`, or less often while passes find no zombie (up to
        `idle_max_sec`; the first zombie seen brings the interval back)."""
        interval = self.interval_sec
        while True:
            await asyncio.sleep(interval)
            self.reap_once()
            interval = self.interval_sec if self._seen else min(interval * 2, self.idle_max_sec)
