"""The API's front door: its sockets listen from the start, its server is loaded at the first knock.

Every supervisor serves the API, yet most runs (`vik-tui run` under cron or systemd, a benchmark)
never see a client, and the server's code (aiohttp, the wire schemas, the handlers) is about a
third of a supervisor's start-up time and a quarter of its memory. So `serve` binds
`service/api.sock` (0600 from the moment it has its name, `endpoint.bind_unix`) and keeps the
`--port` socket `cli` bound, exactly as before, and only watches them (`loop.add_reader`): when the
first connection is pending, it imports `server` and starts the aiohttp sites on those same
sockets. The pending connection waits in the listen backlog meanwhile and is then served like any
other; nothing changes for a client (`attach` finds the socket at once, TCP asks for the token).

The event hub subscribes when the companion is registered, before the supervisor's first event,
so the first client can still replay from `supervisor_started` on (`Last-Event-ID: 0`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from vik_tui.api import endpoint
from vik_tui.api.stream import EventHub

if TYPE_CHECKING:
    from aiohttp import web

    from vik_tui.api.server import Api
    from vik_tui.engine.supervisor import Supervisor


class Front:
    """The listening sockets of one supervisor's API, and its server once a client came."""

    def __init__(self, supervisor: Supervisor, hub: EventHub, token: str) -> None:
        self.supervisor = supervisor
        self.hub = hub
        self.token = token
        self.api: Api | None = None  # the handlers, from the first client on
        self._sockets: list[socket.socket] = []
        self._runner: web.AppRunner | None = None
        self._starting: asyncio.Task[None] | None = None
        self._watching = False

    def watch(self, sockets: list[socket.socket]) -> None:
        """Wait for the first connection on any of `sockets` without accepting it."""
        loop = asyncio.get_running_loop()
        self._sockets = sockets
        for sock in sockets:
            loop.add_reader(sock.fileno(), self._knock)
        self._watching = True

    def _unwatch(self) -> None:
        if not self._watching:  # (after the knock, the server's own readers are on these sockets)
            return
        self._watching = False
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())

    def _knock(self) -> None:
        """A connection is pending: from now on the server accepts (this one first)."""
        self._unwatch()
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        try:
            from vik_tui.api import server

            api = server.Api(self.supervisor, self.hub, self.token)
            self._runner = await server.start(api, self._sockets)
            self.api = api
        except Exception as exc:  # reported like a companion that fails; the engine goes on
            self.supervisor.log("error", f"the HTTP API failed to start: {type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Stop watching, or stop the server: every stream ends after what it has queued."""
        self._unwatch()
        starting = self._starting
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()


def companion(
    supervisor: Supervisor, tcp: socket.socket | None = None
) -> Callable[[], AbstractAsyncContextManager[Front]]:
    """What `cli` registers (`Supervisor.add_companion`): the event hub subscribes now, so the
    replay ring holds every event from `supervisor_started` on (emitted before companions start),
    and the sockets listen from the start of the supervisor's run."""
    hub = EventHub()
    unsubscribe = supervisor.subscribe(hub)
    return lambda: serve(supervisor, tcp, (hub, unsubscribe))


@contextlib.asynccontextmanager
async def serve(
    supervisor: Supervisor,
    tcp: socket.socket | None = None,
    subscribed: tuple[EventHub, Callable[[], None]] | None = None,
) -> AsyncIterator[Front]:
    """The API for as long as the supervisor runs; `subscribed`: a hub already listening (and
    how to stop it), else one subscribes now."""
    layout = supervisor.layout
    token = endpoint.ensure_token(layout.api_token_file)
    if subscribed is None:
        hub = EventHub()
        unsubscribe = supervisor.subscribe(hub)
    else:
        hub, unsubscribe = subscribed
    front = Front(supervisor, hub, token)
    unix: socket.socket | None = None
    try:
        unix = endpoint.bind_unix(layout.api_socket)
        front.watch([unix] if tcp is None else [unix, tcp])
        where = f"HTTP API on {layout.api_socket}"
        if tcp is not None:
            host, port = tcp.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host
            where += f" and http://{host}:{port} (bearer token in {layout.api_token_file})"
        supervisor.log("info", where)
        yield front
    finally:
        await front.close()
        unsubscribe()
        if unix is not None:
            endpoint.remove_unix(layout.api_socket)
            unix.close()
        if tcp is not None:
            tcp.close()
