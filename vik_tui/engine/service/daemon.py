"""vik's service lifecycle: `service/state.json`, `status`, `stop`, `restart`, `uninstall`, `run -d`.

The state file has vik's nine fields, so `vik status` can read ours and `vik-tui status` can read
vik's. Every supervisor (foreground or detached, UI or headless) writes it once it holds the
workflow's lock and removes it when it exits cleanly; `stop` sends SIGTERM to the pid it names
and waits, and the supervisor stops its agents' process groups and records their outcomes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from vik_tui.engine.processes.descendants import start_time
from vik_tui.engine.service.atomic import write_atomic
from vik_tui.engine.service.paths import API_SOCKET, API_TOKEN, Layout

STOP_TIMEOUT_SEC = 30.0  # vik's STOP_TIMEOUT
POLL_SEC = 0.1  # vik polls the pid every 100 ms
START_TIMEOUT_SEC = 60.0  # how long `run -d` waits for the daemon to say it started
DAEMON_OUTPUT = "daemon.out"  # stdout and stderr of a detached supervisor, in the log directory

FIELDS = (
    "workflow_path",
    "cwd",
    "pid",
    "port",
    "bind_address",
    "started_at",
    "log_dir",
    "sessions_dir",
    "command",
)


class LifecycleError(Exception):
    """A lifecycle command that cannot do its job; the message is the whole explanation."""


@dataclass(frozen=True)
class ServiceState:
    """vik's `service/state.json` (`src/daemon/state.rs`): field names, order and types."""

    workflow_path: str
    cwd: str
    pid: int
    port: int
    bind_address: str
    started_at: str
    log_dir: str
    sessions_dir: str
    command: str
    # ours, additive: the process's start (clock ticks since boot, /proc/<pid>/stat field 22).
    # With the pid it names one process for ever: after a kill -9 the pid may be given to a
    # stranger, who must not be reported running, block `run -d`, or get `stop`'s SIGTERM.
    # None in vik's own file (then the pid alone is checked, as vik does).
    pid_start_time: int | None = None

    @classmethod
    def for_supervisor(
        cls, layout: Layout, command: str, port: int = 0, bind_address: str = "127.0.0.1"
    ) -> ServiceState:
        return cls(
            workflow_path=str(layout.workflow_path),
            cwd=os.getcwd(),
            pid=os.getpid(),
            port=port,  # the HTTP API's TCP port (`--port`); 0: none (the Unix socket is always there)
            bind_address=bind_address,
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            log_dir=str(layout.logs_dir),
            sessions_dir=str(layout.sessions_dir),
            command=command,
            pid_start_time=start_time(os.getpid()),
        )

    @property
    def started_at_text(self) -> str:
        """As `vik status` prints it: `2026-05-16 10:00:00.123456 UTC`."""
        text = self.started_at
        if text.endswith("Z") and "T" in text:
            return text[:-1].replace("T", " ", 1) + " UTC"
        return text


def write_state(path: Path, state: ServiceState) -> None:
    """Pretty JSON without a trailing newline, via `state.json.tmp.<pid>`, fsync and rename (as vik)."""
    write_atomic(path, json.dumps(asdict(state), indent=2), temp_name=f"{path.name}.tmp.{os.getpid()}")


def read_state(path: Path) -> ServiceState | None:
    """The state file, or None when there is none; LifecycleError when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LifecycleError(f"failed to read daemon state file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LifecycleError(f"failed to parse daemon state file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise LifecycleError(f"failed to parse daemon state file {path}: not a JSON object")
    missing = [name for name in FIELDS if name not in data]
    if missing:
        raise LifecycleError(f"failed to parse daemon state file {path}: missing field `{missing[0]}`")
    numbers = {"pid", "port"}
    for name in FIELDS:
        value = data[name]
        wrong = not isinstance(value, int) or isinstance(value, bool) if name in numbers else not isinstance(value, str)
        if wrong:
            raise LifecycleError(f"failed to parse daemon state file {path}: invalid type for `{name}`")
    started = data.get("pid_start_time")
    started = started if isinstance(started, int) and not isinstance(started, bool) else None
    return ServiceState(**{name: data[name] for name in FIELDS}, pid_start_time=started)


def remove_state(path: Path, pid: int | None = None) -> None:
    """Remove the state file; with `pid`, only if it still names that process (a newer one may own it)."""
    if pid is not None:
        try:
            current = read_state(path)
        except LifecycleError:
            return
        if current is None or current.pid != pid:
            return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise LifecycleError(f"failed to remove daemon state file {path}: {exc.strerror or exc}") from None


def pid_alive(pid: int) -> bool:
    """`kill(pid, 0)` as vik checks it (EPERM counts as alive), and not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc: trust kill()
    return stat[stat.rfind(b")") + 2 :].split()[:1] not in ([b"Z"], [b"X"])


def owner_alive(state: ServiceState) -> bool:
    """The process the state file names still runs: its pid is alive *and*, where the file
    records it, started when the supervisor did (a reused pid is a stranger)."""
    if not pid_alive(state.pid):
        return False
    if state.pid_start_time is None:
        return True
    return start_time(state.pid) in (state.pid_start_time, None)  # None: no /proc to ask


# -- the commands ---------------------------------------------------------------------------


def status_lines(path: Path) -> list[str]:
    """`status`: running / stale / not installed, with vik's fields and vik's wording."""
    state = read_state(path)
    if state is None:
        return [
            "status: not installed",  # vik's word; what it means, ours:
            "meaning: no supervisor of this workflow is running (it stopped cleanly, or none was started);"
            " start one with `vik-tui run -d`",
            f"state_file: {path}",
        ]
    return [
        f"status: {'running' if owner_alive(state) else 'stale'}",
        f"state_file: {path}",
        f"pid: {state.pid}",
        f"bind_address: {state.bind_address}:{state.port}",
        f"started_at: {state.started_at_text}",
        f"log_dir: {state.log_dir}",
        f"sessions_dir: {state.sessions_dir}",
        f"workflow_path: {state.workflow_path}",
        f"command: {state.command}",
        *_api_lines(path.parent, state),
    ]


def _api_lines(service_dir: Path, state: ServiceState) -> list[str]:
    """Ours, after vik's fields: where the HTTP API answers, and the token TCP asks for."""
    if not owner_alive(state):
        return []
    lines = []
    if (service_dir / API_SOCKET).exists():
        lines.append(f"api_socket: {service_dir / API_SOCKET}")
    if state.port:
        host = f"[{state.bind_address}]" if ":" in state.bind_address else state.bind_address
        lines.append(f"api_url: http://{host}:{state.port}/api/v1")
    try:
        token = (service_dir / API_TOKEN).read_text(encoding="utf-8").strip()
    except OSError:
        token = ""
    if token:
        lines.append(f"api_token: {token}")
    return lines


def stop(path: Path, timeout_sec: float = STOP_TIMEOUT_SEC) -> bool:
    """SIGTERM the recorded supervisor and wait until it is gone; False when no state file exists.

    A stale file (its pid is dead) is just removed. LifecycleError when the process outlives
    `timeout_sec`.
    """
    state = read_state(path)
    if state is None:
        return False
    _stop_state(path, state, timeout_sec)
    return True


def _stop_state(path: Path, state: ServiceState, timeout_sec: float) -> None:
    if owner_alive(state):  # never signal a process that only has the pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_sec
        while owner_alive(state):
            if time.monotonic() >= deadline:
                raise LifecycleError(f"daemon pid {state.pid} did not exit within {int(timeout_sec * 1000)} ms")
            time.sleep(POLL_SEC)
    remove_state(path)


def stop_if_running(path: Path, timeout_sec: float = STOP_TIMEOUT_SEC) -> bool:
    """`restart` and `uninstall`: stop a live supervisor (True), or clear a stale file (False)."""
    state = read_state(path)
    if state is None:
        return False
    alive = owner_alive(state)
    _stop_state(path, state, timeout_sec)
    return alive


def refuse_if_running(path: Path) -> None:
    """`run -d` refuses while the state file names a live supervisor (vik's wording)."""
    try:
        state = read_state(path)
    except LifecycleError as exc:
        raise LifecycleError(f"read daemon state file: {exc}") from None
    if state is not None and owner_alive(state):
        raise LifecycleError(f"daemon already running (pid {state.pid}, state file {path})")


# -- detaching ------------------------------------------------------------------------------


def detach(run: Callable[[Callable[[], None]], int], output: Path) -> int:
    """Run `run` in a daemon (double fork, setsid) and return 0 once it reports it started.

    The daemon's stdin is /dev/null and its stdout and stderr go to `output` (appended); its
    working directory stays where it was (vik does not chdir either, and prompt exec() runs
    there). `run` receives `started()`, to call once the supervisor holds its lock and has
    written the state file. If the daemon ends before that, its last output lines are the error.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:  # the intermediate: a new session, then the daemon, then leave
        os.close(read_end)
        try:
            os.setsid()
            if os.fork() == 0:
                _become_daemon(run, write_end, output)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(first, 0)
    started = _wait_for_handshake(read_end, START_TIMEOUT_SEC)
    os.close(read_end)
    if started:
        return 0
    raise LifecycleError(f"the daemon did not start{_last_lines(output)}; its output is in {output}")


def _become_daemon(run: Callable[[Callable[[], None]], int], handshake: int, output: Path) -> None:
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        log = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
        print(f"--- {datetime.now(UTC).isoformat()} vik-tui daemon pid {os.getpid()}", flush=True)

        def started() -> None:
            with contextlib.suppress(OSError):
                os.write(handshake, b"1")

        code = run(started)
    except BaseException as exc:  # the daemon has no terminal: say it in its output file
        with contextlib.suppress(Exception):
            print(f"vik-tui daemon: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait_for_handshake(fd: int, timeout_sec: float) -> bool:
    deadline = time.monotonic() + timeout_sec
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            return os.read(fd, 1) == b"1"  # b"" is EOF: the daemon ended without starting


def _last_lines(path: Path, count: int = 3) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    tail = [line for line in lines[-count:] if not line.startswith("--- ")]
    return (": " + " | ".join(tail)) if tail else ""
