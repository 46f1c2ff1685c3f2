"""Real OpenSSH servers on 127.0.0.1 for tests and benchmarks: SSH code is tested against sshd
itself, not a mock, so key auth, ControlMaster and dropped connections behave as in production.

`SshLab(dir)` makes one client key and an `ssh_config`; `lab.add_host("host-a")` starts one
`sshd` and adds a `Host host-a` block, so `ssh -F <lab.config> host-a CMD` runs CMD as the current
user through that server. Each host can be stopped, killed like a machine going down, and
restarted on the same port with the same keys.

A session's environment is built by sshd from scratch, so what a remote process should carry
is set server-side (`SetEnv`): `VIK_TEST_HOST=<name>` (which host ran it), `VIK_TEST_SSHD=<token>`
(found again by `remote_processes`/`kill_hard` after it detached), and the caller's `setenv`
(the test fixture passes the leak guard's marker). Stdlib and psutil only: benchmarks import it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import psutil

HOST_VAR = "VIK_TEST_HOST"  # set in every session: the host alias that ran it
TOKEN_VAR = "VIK_TEST_SSHD"  # set in every session: one value per SshHost, kept across restarts
START_TIMEOUT_SEC = 30.0  # ceilings for a loaded machine, never a pace
STOP_GRACE_SEC = 10.0
GONE_TIMEOUT_SEC = 30.0
PORT_ATTEMPTS = 10
RESTART_BUSY_SEC = 5.0  # how long `restart` waits for its old port to be free again
PRIVSEP_DIR = Path("/run/sshd")
INSTALL_HINT = "`.ci/run` installs openssh-server and openssh-client (apt-get)"


class SshdMissing(RuntimeError):
    """OpenSSH (server or client) is not installed, or too old for server-side SetEnv."""


class _PortBusy(Exception):
    pass


def _tool(name: str) -> str:
    """Absolute path of an OpenSSH binary: sshd re-executes itself and insists on one, and
    /usr/sbin is not on every PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise SshdMissing(f"`{name}` not found: {INSTALL_HINT}")
    return os.path.abspath(found)


@functools.cache
def sshd_version() -> tuple[int, int]:
    """(major, minor) of the installed sshd: options differ between releases."""
    out = subprocess.run([_tool("sshd"), "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stdout + out.stderr)
    if match is None:
        raise SshdMissing(f"cannot tell the sshd version from {out.stdout + out.stderr!r}")
    return int(match[1]), int(match[2])


def check_installed() -> None:
    """Fail early and say how to fix it, instead of as a confusing ssh exit 255 later."""
    for name in ("sshd", "ssh", "ssh-keygen"):
        _tool(name)
    if sshd_version() < (8, 7):
        raise SshdMissing(f"sshd {sshd_version()} has no server-side SetEnv (needs OpenSSH >= 8.7)")
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        # root's sshd refuses to start without it; /run is emptied at boot and .ci/run creates it
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise SshdMissing(f"sshd needs {PRIVSEP_DIR} (`mkdir -p {PRIVSEP_DIR}`): {exc}") from exc


def keygen(path: Path) -> Path:
    """An ed25519 key pair without passphrase at `path` and `path`.pub."""
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing is bound to, below the kernel's ephemeral range when there is room: a port
    in that range can become the local end of any outgoing connection between a `kill_hard` and
    the `restart` that wants it back."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, low) if low > 11000 else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free TCP port on 127.0.0.1")


def _quote(value: str) -> str:
    """One ssh/sshd config argument: double-quoted, `"` and `\\` escaped (OpenSSH >= 8.7 rules)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"a config value cannot hold a newline: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _gone(proc: psutil.Process) -> bool:
    """Exited, or a zombie nobody has reaped yet (orphans wait on init, which may be slow)."""
    try:
        return proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


def _signal(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of `procs` still alive after `timeout`."""
    pending = list(procs)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [proc for proc in pending if not _gone(proc)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.01)  # polling for a condition, bounded by the deadline
    return pending


def _freeze(roots: Iterable[psutil.Process]) -> list[psutil.Process]:
    """SIGSTOP `roots` and all their descendants until no new one appears, and return them all:
    a stopped process cannot fork, so a kill that follows misses nobody (sshd forks one process per
    connection and each setsid()s, so neither a process group nor one `children()` call would do)."""
    found = {proc.pid: proc for proc in roots}
    while True:
        _signal(found.values(), signal.SIGSTOP)
        deadline = time.monotonic() + GONE_TIMEOUT_SEC
        for proc in found.values():  # the stop lands asynchronously; a fork in flight must finish first
            while time.monotonic() < deadline:
                try:
                    if proc.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                        break
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.005)
        new: dict[int, psutil.Process] = {}
        for proc in list(found.values()):
            with contextlib.suppress(psutil.Error):
                new.update((child.pid, child) for child in proc.children(recursive=True) if child.pid not in found)
        if not new:
            return list(found.values())
        found.update(new)


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Live processes whose environment has `name=value` (how a detached remote process is found)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(name) == value and not _gone(proc):
                found.append(proc)
    return found


class SshHost:
    """One sshd on 127.0.0.1, standing in for one remote machine called `name`."""

    def __init__(self, name: str, root: Path, authorized_key: Path, setenv: Mapping[str, str]) -> None:
        self.name = name
        self.dir = root
        self.port = 0
        self.token = uuid.uuid4().hex
        self.dir.mkdir(parents=True)
        self.host_key = keygen(self.dir / "host_ed25519")
        self.authorized_keys = self.dir / "authorized_keys"
        shutil.copyfile(authorized_key, self.authorized_keys)
        self.config = self.dir / "sshd_config"
        self.log = self.dir / "sshd.log"
        # a home of its own, so a `~`-relative workspace root is a different directory per host,
        # as on two real machines (sshd's SetEnv overrides the HOME it set from the password entry)
        self.home = self.dir / "home"
        self.home.mkdir()
        self._setenv = {**setenv, HOST_VAR: name, TOKEN_VAR: self.token, "HOME": str(self.home)}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The listener's pid (a new one after `restart`)."""
        if self._proc is None:
            raise RuntimeError(f"sshd for {self.name} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        lines = [
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {_quote(str(self.host_key))}",
            f"AuthorizedKeysFile {_quote(str(self.authorized_keys))}",
            f"PidFile {_quote(str(self.dir / 'sshd.pid'))}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the temp dirs are not laid out like a home directory
            "PermitRootLogin prohibit-password",
            "MaxSessions 100",
            "MaxStartups 100:30:200",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",  # scp speaks sftp since OpenSSH 9.0
            "SetEnv " + " ".join(_quote(f"{key}={value}") for key, value in self._setenv.items()),
        ]
        if sshd_version() >= (9, 8):  # else probes and dropped connections get 127.0.0.1 refused a while
            lines.append("PerSourcePenalties no")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, port: int | None = None) -> None:
        """Start sshd on `port`, else on a free one (another, when a parallel test wins the race for
        it), and return once it answers with its SSH banner."""
        now = time.monotonic()
        deadline, busy_until = now + START_TIMEOUT_SEC, now + RESTART_BUSY_SEC
        for attempt in itertools.count(1):
            self.port = port if port is not None else free_port()
            try:
                self._start_once(deadline)
                return
            except _PortBusy:
                if port is None and attempt < PORT_ATTEMPTS:
                    continue
                if port is not None and time.monotonic() < busy_until:
                    time.sleep(0.1)  # a socket of the old server may still be closing; bounded
                    continue
                raise RuntimeError(f"sshd for {self.name}: port {self.port} is in use\n{self._log_tail()}") from None

    def _start_once(self, deadline: float) -> None:
        self._write_config()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [_tool("sshd"), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        listening = f"Server listening on 127.0.0.1 port {self.port}.".encode()
        while time.monotonic() < deadline:
            exited = self._proc.poll() is not None
            text = self.log.read_bytes()[offset:]  # read after the poll: an exit's last words are in
            if exited:
                self._proc = None
                if b"Address already in use" in text:
                    raise _PortBusy
                raise RuntimeError(f"sshd for {self.name} exited at start\n{self._log_tail()}")
            # the log line proves the socket is ours, not another test's that took the port first
            if listening in text and self._answers():
                return
            time.sleep(0.01)  # polling for a condition, bounded by the deadline
        self.kill_hard()
        raise RuntimeError(f"sshd for {self.name} not answering on port {self.port}\n{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no sshd log)"
        return f"--- {self.log} (last {lines} lines):\n" + "\n".join(text.splitlines()[-lines:])

    def _listener(self) -> list[psutil.Process]:
        if self._proc is None:
            return []
        try:
            return [psutil.Process(self._proc.pid)]
        except psutil.NoSuchProcess:
            return []

    def remote_processes(self) -> list[psutil.Process]:
        """What sessions on this host started and is still alive, detached or not (not sshd itself)."""
        return processes_with_env(TOKEN_VAR, self.token)

    def stop(self) -> None:
        """SIGTERM the listener, every per-connection sshd and everything they run; SIGKILL what
        is left after a grace; return once all are gone. A process that detached (setsid + exit of
        its parent) is not a descendant and survives, as it would a server restart: the leak guard
        reports it."""
        procs = _freeze(self._listener())
        _signal(procs, signal.SIGTERM)
        _signal(procs, signal.SIGCONT)
        self._finish(_wait_gone(procs, STOP_GRACE_SEC))

    def kill_hard(self) -> None:
        """SIGKILL the listener, its descendants and every process its sessions started, even
        detached ones, all at once: the machine went down. Open connections drop (ssh exits 255)."""
        procs = _freeze([*self._listener(), *self.remote_processes()])
        _signal(procs, signal.SIGKILL)
        # a process in the middle of an exec (`setsid sleep`) can fail the environment read
        # once and be missed by the scan: look again until the scan finds none
        deadline = time.monotonic() + GONE_TIMEOUT_SEC
        while (late := [p for p in self.remote_processes() if p.pid not in {q.pid for q in procs}]) and (
            time.monotonic() < deadline
        ):
            late = _freeze(late)
            _signal(late, signal.SIGKILL)
            procs += late
        self._finish(procs)

    def _finish(self, procs: list[psutil.Process]) -> None:
        _signal(procs, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(GONE_TIMEOUT_SEC)  # reap our own child
            self._proc = None
        left = _wait_gone(procs, GONE_TIMEOUT_SEC)
        if left:
            raise RuntimeError(f"sshd for {self.name}: still running after SIGKILL: {[p.pid for p in left]}")

    def restart(self) -> None:
        """Start again on the same port with the same keys (the machine came back)."""
        if self.running:
            raise RuntimeError(f"sshd for {self.name} is still running (pid {self.pid})")
        self.start(self.port)


class SshLab:
    """A client key, an ssh_config and the sshd hosts it names, under one directory."""

    def __init__(self, root: Path, *, setenv: Mapping[str, str] | None = None) -> None:
        check_installed()
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.identity = keygen(self.root / "id_ed25519")
        self.config = self.root / "ssh_config"
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.hosts: dict[str, SshHost] = {}
        self._setenv = dict(setenv or {})
        self._write_config()

    def _write_config(self) -> None:
        blocks = []
        for host in self.hosts.values():
            options = {
                "HostName": "127.0.0.1",
                "Port": str(host.port),
                "User": self.user,
                "IdentityFile": _quote(str(self.identity)),
                "IdentitiesOnly": "yes",
                "StrictHostKeyChecking": "no",
                "UserKnownHostsFile": "/dev/null",
                "LogLevel": "ERROR",
                "BatchMode": "yes",
                "ConnectTimeout": "5",
            }
            blocks.append(f"Host {host.name}\n" + "".join(f"  {key} {value}\n" for key, value in options.items()))
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text("\n".join(blocks))
        tmp.chmod(0o600)
        tmp.replace(self.config)  # an ssh reading it mid-add sees the old file or the new one

    def add_host(self, name: str) -> SshHost:
        """Start an sshd for host alias `name` and make `ssh -F <config> name` reach it."""
        if name in self.hosts or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"host name {name!r} is taken or not a plain alias")
        host = SshHost(name, self.root / f"sshd-{name}", self.identity.with_suffix(".pub"), self._setenv)
        host.start()
        self.hosts[name] = host
        self._write_config()
        return host

    def ssh(self, *args: str) -> list[str]:
        """`ssh -F <config> ARGS` as an argv, e.g. `lab.ssh("host-a", "echo hi")`."""
        return [_tool("ssh"), "-F", str(self.config), *args]

    def close(self) -> None:
        """Stop every host (each is tried even when one fails); calling it again does nothing."""
        errors = []
        for host in self.hosts.values():
            try:
                host.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> SshLab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
