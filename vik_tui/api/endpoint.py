"""Where a supervisor's API listens, and the secret that guards TCP.

- The Unix socket `service/api.sock` is always served, mode 0600 from the moment it is
  reachable under its name (bound under a temporary name, chmod, then renamed over whatever is
  there: the workflow lock is held, so an existing socket is a killed supervisor's, stale).
- TCP only with `--port` (0 = ephemeral), on `--bind-address` (default 127.0.0.1); a
  non-loopback address needs `--allow-remote`. The socket is bound before the supervisor
  starts, so a port in use is a one-line error and exit 1, not a half-started supervisor.
- `service/api.token` (0600) holds the bearer token TCP asks for; made at the first start.

A Unix socket path is limited to 107 bytes, and a workflow root under a deep directory is
longer: `short_path` reaches the same file through `/proc/self/fd/<dir fd>/`, which both the
server (to bind) and a client (to connect) can use.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import secrets
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
TOKEN_BYTES = 32


class EndpointError(Exception):
    """Cannot listen where asked; the message is the whole explanation (one line)."""


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A path to `path` short enough for a Unix socket address: itself when it fits, else
    `/proc/self/fd/<fd of its directory>/<name>` (the fd stays open inside the `with`)."""
    text = os.fsdecode(path)
    if len(os.fsencode(text)) <= SUN_PATH_MAX:
        yield text
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, owner-only from the start; a stale one is replaced.
    The caller must hold the workflow lock (nobody else may be serving this path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_path(tmp) as tmp_short, contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_short)
        with short_path(tmp) as tmp_short:
            sock.bind(tmp_short)
        os.chmod(tmp, 0o600)  # before it has its real name, so no one connects through looser modes
        sock.listen(128)
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sock.setblocking(False)
    return sock


def remove_unix(path: Path) -> None:
    """Remove the socket file at exit (the workflow lock is still held: it is ours)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def listen_tcp(bind_address: str, port: int, allow_remote: bool) -> socket.socket:
    """A listening TCP socket, or EndpointError with one line that says why not."""
    if not 0 <= port <= 65535:
        raise EndpointError(f"--port must be between 0 and 65535 (got {port})")
    try:
        ipaddress.ip_address(bind_address)
    except ValueError:
        raise EndpointError(f"--bind-address must be an IP address (got {bind_address!r})") from None
    if not is_loopback(bind_address) and not allow_remote:
        raise EndpointError(
            f"--bind-address {bind_address} is not a loopback address: anyone who can reach it may try the"
            " token; add --allow-remote to serve it anyway (or use an SSH tunnel to 127.0.0.1)"
        )
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_address, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EndpointError(f"cannot listen on {bind_address}:{port}: the port is already in use") from None
        raise EndpointError(f"cannot listen on {bind_address}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def ensure_token(path: Path) -> str:
    """The bearer token in `path`, made (0600, random, hex) when there is none yet; a file
    someone loosened is made owner-only again. Hex, not URL-safe base64: a token starting with
    `-` would read as an option in `vik-tui attach URL --token TOKEN`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # empty (a crash while writing it): make one
    token = secrets.token_hex(TOKEN_BYTES)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def read_token(path: Path) -> str | None:
    """The token, for `vik-tui status` and clients on this machine; None when there is none."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
