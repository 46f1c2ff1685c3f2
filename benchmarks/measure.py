"""Run one process and measure it alone: wall time, its own CPU time, its peak RSS.

Linux carries a process's peak RSS across fork and exec, so a child spawned by the (large)
benchmark process would report the benchmark's own peak. This file is therefore also a tiny
launcher, started as `python -I -S measure.py ...` (a few MiB): it spawns the measured command,
leaves it a zombie until its CPU times are read from /proc (`waitid(..., WNOWAIT)`), so user+sys
are the process's own (its agents are counted apart), then reaps it with `wait4`, whose peak RSS
is the maximum over the process and its reaped children (the agents: `cat`s of a few MiB).

`tree_cpu` is the user+sys of the whole tree the launcher reaped (the process, and every
descendant it or they waited for). With `tree_rss=TEXT`, the resident memory of the process and
of its descendants whose command line does not contain TEXT (e.g. the agents' directory) is
summed every `TREE_RSS_SEC` (a scan of /proc), and the largest sum is `tree_rss_mib`: the peak
of a process that does its work in helper processes. With `reap=True` the launcher is a child subreaper: what
outlives the process (a daemonised `ssh` ControlMaster still closing) comes back to it, is
waited for up to `ORPHAN_WAIT_SEC` (its CPU counted), and is SIGKILLed after that (`orphans`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()
ORPHAN_WAIT_SEC = 10.0
TREE_RSS_SEC = 0.2
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class ProcStats:
    wall: float  # seconds, spawn to exit
    cpu: float  # seconds of the process's own user+sys time (children excluded)
    rss_mib: float  # peak resident set size
    returncode: int
    timed_out: bool = False
    tree_cpu: float = 0.0  # seconds of user+sys of the process and every descendant reaped
    orphans: int = 0  # descendants still alive ORPHAN_WAIT_SEC after the process exited (killed)
    tree_rss_mib: float = 0.0  # the largest sampled sum of the tree's RSS (with `tree_rss`)


def run_measured(
    argv: list[str],
    cwd: Path,
    stdout: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    *,
    reap: bool = False,
    tree_rss: str | None = None,
) -> ProcStats:
    """Run `argv` in `cwd` with stdout and stderr into `stdout`; kill it after `timeout` seconds.
    `reap`: also adopt and wait for what the process leaves behind; `tree_rss`: sample the
    tree's summed RSS, leaving out processes whose command line holds it (module docstring)."""
    flags = ["--reap"] if reap else []
    if tree_rss is not None:
        flags += ["--tree-rss", tree_rss]
    launcher = [sys.executable, "-I", "-S", str(HERE), *flags, str(timeout), str(stdout), *argv]
    result = subprocess.run(launcher, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"launcher failed: {result.stderr}")
    return ProcStats(**json.loads(result.stdout))


def _children() -> list[int]:
    """This process's children, from /proc (the launcher runs without site-packages: no psutil)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.append(int(stat.parent.name))
    return found


def _reap_orphans() -> int:
    """Wait for adopted descendants until none is left or `ORPHAN_WAIT_SEC` passed; SIGKILL
    and reap the rest. Returns how many had to be killed."""
    deadline = time.monotonic() + ORPHAN_WAIT_SEC
    killed: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return len(killed)
        if pid:
            continue
        if time.monotonic() > deadline:
            for pid in _children():
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _tree_rss(root: int, leave_out: str) -> float:
    """MiB resident in `root` and its descendants, but those whose command line has `leave_out`."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    total = 0
    for pid in tree:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if pid != root and leave_out.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tree_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _launch(
    timeout: float, stdout: str, argv: list[str], reap: bool = False, tree_rss: str | None = None
) -> dict[str, object]:
    if reap:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions, setsid=True)
    os.close(out)
    timed_out = False
    peak_tree, next_sample = 0.0, start
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        now = time.perf_counter()
        if not timed_out and now - start > timeout:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
        if tree_rss is not None and now >= next_sample:
            peak_tree = max(peak_tree, _tree_rss(pid, tree_rss))
            next_sample = time.perf_counter() + TREE_RSS_SEC
        time.sleep(0.005)
    wall = time.perf_counter() - start
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    orphans = _reap_orphans() if reap else 0
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_mib": usage.ru_maxrss / 1024,
        "returncode": code,
        "timed_out": timed_out,
        "tree_cpu": _tree_cpu(),
        "orphans": orphans,
        "tree_rss_mib": peak_tree,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    reap = args[0] == "--reap"
    args = args[1:] if reap else args
    leave_out = None
    if args[0] == "--tree-rss":
        leave_out, args = args[1], args[2:]
    print(json.dumps(_launch(float(args[0]), args[1], args[2:], reap, leave_out)))
