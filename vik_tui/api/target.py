"""Where an attached UI finds its supervisor: the Unix socket beside a workflow's state file,
or a TCP URL with a bearer token (`vik-tui attach http://127.0.0.1:PORT --token T`)."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from vik_tui.engine.service import daemon
from vik_tui.engine.service.paths import Layout

if TYPE_CHECKING:  # imported when a connection is made: the UI asks `live_supervisor` at every
    import aiohttp  # start, and aiohttp's client (with its TLS context) is ~0.1 s it rarely needs

SOCKET_WAIT_SEC = 5.0  # a supervisor that just took the lock opens its socket right after


class TargetError(Exception):
    """The supervisor cannot be reached as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """One supervisor's API. `socket`: a Unix socket (owner-only, no token); else `base_url`
    over TCP with `token`."""

    base_url: str  # scheme://host:port, without the /api/v1 prefix
    socket: Path | None = None
    token: str | None = None
    workflow_path: Path | None = None  # known when found from a workflow file
    root: Path | None = None  # the workflow root, likewise

    @property
    def on_this_machine(self) -> bool:
        """Unix socket, or TCP to a loopback address (which may still be an `ssh -L` tunnel:
        the plans' directories tell for sure)."""
        if self.socket is not None:
            return True
        host = urlsplit(self.base_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else self.base_url

    def connector(self, socket_path: str | None = None) -> aiohttp.BaseConnector:
        """`socket_path`: the socket as `endpoint.short_path` spells it (a deep workflow root is
        longer than a socket address may be)."""
        import aiohttp

        if self.socket is not None:
            return aiohttp.UnixConnector(path=socket_path or str(self.socket))
        return aiohttp.TCPConnector(limit=8)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token and self.socket is None else {}

    def url_of(self, path: str) -> str:
        """A full URL for a route's path (`routes.url_for`, which starts with /api/v1)."""
        return f"{self.base_url}{path}"


def from_url(url: str, token: str | None) -> ApiTarget:
    """`http://HOST:PORT` (a trailing /api/v1 is accepted); TCP always needs a token."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"not an API address: {url!r} (expected http://HOST:PORT)")
    if parts.query and "token" in parts.query:
        raise TargetError("a token is never accepted in the URL; pass --token or set VIK_TUI_TOKEN")
    if not token:
        raise TargetError(f"{url} needs the supervisor's token: --token TOKEN or VIK_TUI_TOKEN (see `vik-tui status`)")
    try:
        port = parts.port
    except ValueError:
        raise TargetError(f"not an API address: {url!r} (bad port)") from None
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in (parts.hostname or "") and port is not None:
        netloc = f"[{parts.hostname}]:{port}"
    return ApiTarget(base_url=f"{parts.scheme}://{netloc}", token=token.strip())


def live_supervisor(layout: Layout, wait: float = SOCKET_WAIT_SEC) -> ApiTarget | None:
    """The API of a live supervisor of this workflow, or None when none runs.

    Live: `service/state.json` names a running pid (every supervisor writes it once it holds the
    workflow's lock). Its socket follows within moments; a live supervisor without one after
    `wait` seconds is an error (an older vik-tui, or vik itself), not a reason to start another."""
    try:
        state = daemon.read_state(layout.state_file)
    except daemon.LifecycleError as exc:
        raise TargetError(str(exc)) from None
    if state is None or not daemon.pid_alive(state.pid):
        return None
    socket = layout.api_socket
    deadline = time.monotonic() + wait
    while not socket.exists():
        if time.monotonic() >= deadline or not daemon.pid_alive(state.pid):
            if not daemon.pid_alive(state.pid):
                return None
            raise TargetError(
                f"a supervisor of this workflow runs (pid {state.pid}) but serves no API at {socket};"
                f" stop it with `vik-tui stop {layout.workflow_path}` or wait until it ends"
            )
        time.sleep(0.05)
    return ApiTarget(base_url="http://vik-tui", socket=socket, workflow_path=layout.workflow_path, root=layout.root)
