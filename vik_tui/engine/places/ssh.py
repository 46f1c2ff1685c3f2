"""The system OpenSSH client as the way to a worker host: command lines, remote quoting, the
shared connection (ControlMaster) and the sweep that ends a remote run's processes.

We never speak SSH ourselves: every remote action is one `ssh` process, so the user's
ssh_config, keys, agent and ProxyJump apply. One master connection per host (started by the
pool's health check) carries every stage, hook and sweep as a new channel: no handshake each.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vik_tui.engine.processes.proc import OUTPUT_TAIL_BYTES, ShellRun, run_shell

# what every remote process of a run carries (a different name from the local `MARK_VAR`, so a
# local sweep never does the remote one's job when both ends are the same machine, as in tests)
REMOTE_MARK_VAR = "VIK_TUI_REMOTE_OWNER"
CONTROL_DIR_PREFIX = "vt-ssh-"  # the private directory of a supervisor's master sockets
SSH_FAILED = 255  # ssh's own exit status: the connection failed or dropped (or the command exited 255)
CONNECT_TIMEOUT_SEC = 10
CHECK_CONNECT_TIMEOUT_SEC = 5  # a health check: a host that has not answered by then is down for now
CHECK_TIMEOUT_SEC = 20.0
_MARK_CHARS = re.compile(r"[A-Za-z0-9_./-]+")


def remote_quote(word: str) -> str:
    """Quote one word for the remote POSIX shell, keeping a leading `~/` a home reference."""
    if word == "~":
        return '"$HOME"'
    if word.startswith("~/"):
        return '"$HOME"/' + shlex.quote(word[2:])
    return shlex.quote(word)


def remote_script(body: str, *, cwd: str | None = None, mark: str | None = None) -> str:
    """The command line the remote login shell gets: `exec sh -c '…'`, so fish or csh as a
    login shell change nothing, with the run's mark exported and the working directory entered."""
    lines = []
    if mark is not None:
        lines.append(f"{REMOTE_MARK_VAR}={shlex.quote(mark)}; export {REMOTE_MARK_VAR}")
    if cwd is not None:
        lines.append(f"cd -- {remote_quote(cwd)} || exit 1")
    lines.append(body)
    return "exec sh -c " + shlex.quote("\n".join(lines))


def exec_line(argv: Sequence[str]) -> str:
    """`exec prog args…` quoted for the remote shell. A `~/` program path is the home there (as
    `~` in a command is expanded here); arguments stay literal, as they are for a local agent."""
    program, *args = argv
    return "exec " + " ".join([remote_quote(program), *(shlex.quote(word) for word in args)])


def sweep_script(prefix: str, grace_sec: float) -> str:
    """A remote script that ends every process carrying a mark under `prefix`: SIGTERM, up to
    `grace_sec` for them to go, then SIGKILL. It prints the pids it signalled. Reading
    `/proc/*/environ` finds them all, even those that left the process group (`setsid`)."""
    if not _MARK_CHARS.fullmatch(prefix):
        raise ValueError(f"unexpected characters in mark {prefix!r}")
    pattern = "^" + REMOTE_MARK_VAR + "=" + prefix.replace(".", r"\.")
    ticks = max(1, int(grace_sec * 10))
    return "\n".join(
        [
            "marked() { grep -lsz -- " + shlex.quote(pattern) + " /proc/[0-9]*/environ 2>/dev/null"
            " | sed -n 's#^/proc/\\([0-9]*\\)/environ$#\\1#p'; }",
            'pids=$(marked); [ -n "$pids" ] || exit 0',
            "kill -TERM $pids 2>/dev/null",
            f'n=0; while [ $n -lt {ticks} ] && [ -n "$(marked)" ]; do sleep 0.1; n=$((n+1)); done',
            'left=$(marked); [ -z "$left" ] || kill -KILL $left 2>/dev/null',
            "echo $pids",
        ]
    )


@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to reach one host: its destination, the `-F` file, the master's socket directory, and
    the local directory `ssh` starts in (the workflow's, so relative paths in ssh_config work)."""

    destination: str
    config_file: str | None
    control_dir: str
    local_dir: str

    def options(self, *, batch: bool = True, connect_timeout: int = CONNECT_TIMEOUT_SEC) -> list[str]:
        argv = ["ssh"]
        if self.config_file:
            argv += ["-F", self.config_file]
        argv += [
            "-o",
            f"ControlPath={self.control_dir}/%C",
            "-o",
            f"ConnectTimeout={connect_timeout}",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
        ]
        if batch:  # never wait for a password prompt nobody will answer
            argv += ["-o", "BatchMode=yes"]
        return argv

    def command(self, remote: str, *, tty: bool = False) -> list[str]:
        """`ssh … host <remote>` over the master when it is up, else a direct connection. Never
        becomes a master itself: a master started here would be owned by (and die with) a stage."""
        return [*self.options(batch=not tty), "-o", "ControlMaster=no", "-t" if tty else "-T", self.destination, remote]

    def master_command(self) -> list[str]:
        """Start the shared connection in the background; exits once it is up (or failed)."""
        return [
            *self.options(connect_timeout=CHECK_CONNECT_TIMEOUT_SEC),
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=yes",
            "-f",
            "-N",
            self.destination,
        ]

    def control_command(self, operation: str) -> list[str]:
        """`ssh -O check|exit host`: ask the master."""
        return [*self.options(), "-O", operation, self.destination]


async def run_remote(
    target: SshTarget,
    body: str,
    timeout_sec: float,
    *,
    cwd: str | None = None,
    mark: str | None = None,
    stdout_limit: int = OUTPUT_TAIL_BYTES,
    stdout_cap: bool = False,
) -> ShellRun:
    """Run `body` with `sh` on the host (in `cwd`, carrying `mark`); on timeout only the local
    `ssh` is killed here: the caller sweeps the host by mark."""
    argv = target.command(remote_script(body, cwd=cwd, mark=mark))
    return await run_shell(
        shlex.join(argv),
        Path(target.local_dir),
        timeout_sec,
        grace_sec=1.0,
        stdout_limit=stdout_limit,
        stdout_cap=stdout_cap,
    )


def last_line(data: bytes) -> str:
    """The last non-empty line of an output, for one-line reasons."""
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
