"""Run one process and measure it alone: wall time, its own CPU time, its peak RSS.

Linux carries a process's peak RSS across fork and exec, so a child spawned by the (large)
benchmark process would report the benchmark's own peak. This file is therefore also a tiny
launcher, started as `python -I -S measure.py ...` (a few MiB): it spawns the measured command,
leaves it a zombie until its CPU times are read from /proc (`waitid(..., WNOWAIT)`), so user+sys
are the process's own (its agents are counted apart), then reaps it with `wait4`, whose peak RSS
is the maximum over the process and its reaped children (the agents: `cat`s of a few MiB).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()


@dataclass
class ProcStats:
    wall: float  # seconds, spawn to exit
    cpu: float  # seconds of the process's own user+sys time (children excluded)
    rss_mib: float  # peak resident set size
    returncode: int
    timed_out: bool = False


def run_measured(
    argv: list[str], cwd: Path, stdout: Path, timeout: float, env: dict[str, str] | None = None
) -> ProcStats:
    """Run `argv` in `cwd` with stdout and stderr into `stdout`; kill it after `timeout` seconds."""
    launcher = [sys.executable, "-I", "-S", str(HERE), str(timeout), str(stdout), *argv]
    result = subprocess.run(launcher, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"launcher failed: {result.stderr}")
    return ProcStats(**json.loads(result.stdout))


def _launch(timeout: float, stdout: str, argv: list[str]) -> dict[str, object]:
    out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions, setsid=True)
    os.close(out)
    timed_out = False
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if not timed_out and time.perf_counter() - start > timeout:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.005)
    wall = time.perf_counter() - start
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024, "returncode": code, "timed_out": timed_out}


if __name__ == "__main__":
    print(json.dumps(_launch(float(sys.argv[1]), sys.argv[2], sys.argv[3:])))
