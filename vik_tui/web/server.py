"""The aiohttp application of `vik-tui web`, and the loop that serves it until SIGINT/SIGTERM.

Every route but `/login` needs the session cookie (`access`); without it a page request is sent
to the login form and anything else (`/ws`, `/static/…`) is a 401, so no process is started and
nothing of the app is served. A tab opens when its page's websocket connects (same origin only):
if the workflow's supervisor is gone or every tab is taken, the page says so instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiohttp import WSMsgType, web
from textual_serve.download_manager import DownloadManager

from vik_tui.web import page
from vik_tui.web.access import SESSION_TTL_SEC, Access
from vik_tui.web.tabs import TabProcess, Tabs, TabsFull

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_LOGIN_BODY = 4096
HEARTBEAT_SEC = 15.0  # a tab whose browser vanished without closing is noticed, and ended, this soon


@dataclass
class WebConfig:
    workflow: Path
    token_file: Path
    tab_argv: list[str]
    max_tabs: int
    supervisor_alive: Callable[[], bool]  # a live supervisor of the workflow serves its socket


@dataclass
class WebServer:
    config: WebConfig
    access: Access
    say: Callable[[str], None] = lambda line: None  # one line per tab opened and closed (the command prints them)
    tabs: Tabs = field(init=False)
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    downloads: DownloadManager = field(default_factory=DownloadManager)

    def __post_init__(self) -> None:
        self.tabs = Tabs(self.config.tab_argv, self.config.max_tabs)

    # -- access --------------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/login":
            return await handler(request)
        given = request.query.get("token")
        if given is not None:  # a link with the token: trade it for the cookie, drop it from the URL
            if not self.access.token_matches(given):
                return self._login(401, "That token is not this supervisor's.")
            query = {key: value for key, value in request.query.items() if key != "token"}
            target = request.path + (f"?{urlencode(query)}" if query else "")
            return self._logged_in(target)
        if not self.access.session_valid(request.cookies.get(self.access.cookie_name)):
            if request.method == "GET" and request.path == "/":
                raise web.HTTPSeeOther("/login", headers=page.SECURITY_HEADERS)
            return web.Response(status=401, text="log in first: /login\n", headers=page.SECURITY_HEADERS)
        return await handler(request)

    def _login(self, status: int, error: str | None = None) -> web.Response:
        text = page.login_page(str(self.config.workflow), str(self.config.token_file), error)
        return web.Response(status=status, text=text, content_type="text/html", headers=page.SECURITY_HEADERS)

    def _logged_in(self, target: str) -> web.Response:
        response = web.HTTPSeeOther(target, headers=page.SECURITY_HEADERS)
        response.set_cookie(
            self.access.cookie_name,
            self.access.open_session(),
            max_age=int(SESSION_TTL_SEC),
            path="/",
            httponly=True,
            samesite="Strict",
        )
        return response

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        return self._login(200)

    async def login(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_LOGIN_BODY:
            return self._login(413, "That is not a token (too long).")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not self.access.token_matches(given):
            return self._login(401, "That token is not this supervisor's.")
        return self._logged_in("/")

    # -- the app -------------------------------------------------------------------------------
    def _refusal(self) -> tuple[str, str] | None:
        """Why no tab can open now, or None."""
        if not self.config.supervisor_alive():
            workflow = self.config.workflow
            return (
                "No supervisor is running",
                f"No supervisor of {workflow} is running. Start one with `vik-tui run -d {workflow}`,"
                " then reload this page.",
            )
        if self.tabs.full:
            return (
                "Every tab is taken",
                f"{self.tabs.cap} tabs are open, the most this server runs (vik-tui web --max-tabs)."
                " Close one, then reload this page.",
            )
        return None

    async def index(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal()
        if refusal is not None:
            text = page.notice_page(*refusal)
            return web.Response(status=503, text=text, content_type="text/html", headers=page.SECURITY_HEADERS)
        try:
            font_size = min(max(int(request.query.get("fontsize", "16")), 6), 48)
        except ValueError:
            font_size = 16
        text = page.app_page(str(self.config.workflow), font_size)
        return web.Response(text=text, content_type="text/html", headers=page.SECURITY_HEADERS)

    async def page_js(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=page.PAGE_JS, content_type="text/javascript", headers=page.SECURITY_HEADERS)

    async def textual_js(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=page.textual_js(), content_type="text/javascript", headers=page.SECURITY_HEADERS)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """One tab: its app process lives exactly as long as this websocket."""
        if not _same_origin(request):
            return web.Response(status=403, text="cross-origin websocket refused\n")
        refusal = self._refusal()
        if refusal is not None:
            return web.Response(status=503, text=refusal[1] + "\n")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SEC, max_msg_size=1 << 20)

        async def close() -> None:
            await ws.close()

        try:
            tab = self.tabs.claim(
                write_bytes=ws.send_bytes, write_str=ws.send_str, close=close, download_manager=self.downloads
            )
        except TabsFull as exc:
            return web.Response(status=503, text=f"{exc}\n")
        try:
            await ws.prepare(request)
            self.sockets.add(ws)
            await tab.start(_size(request, "width", 80), _size(request, "height", 24))
            self.say(f"tab opened: pid {tab.pid} ({len(self.tabs.open)} open)")
            await _relay(ws, tab)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except OSError as exc:  # the app could not be started (the interpreter moved, no more processes)
            self.say(f"tab refused: cannot start {tab.command}: {exc}")
        finally:
            self.sockets.discard(ws)
            await self.tabs.release(tab)
            if tab.pid is not None:
                self.say(f"tab closed: pid {tab.pid} ended ({len(self.tabs.open)} open)")
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every tab (each app detaches); the supervisor is not told anything."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server stopping")
        await self.tabs.close_all()


async def _relay(ws: web.WebSocketResponse, tab: TabProcess) -> None:
    """The browser's messages to the app: keys, size, focus (textual-serve's protocol)."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = message.json()
        except ValueError:
            continue
        if not isinstance(envelope, list) or not envelope:
            continue
        kind = envelope[0]
        data = envelope[1] if len(envelope) > 1 else None
        if kind == "stdin" and isinstance(data, str):
            await tab.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            width, height = data.get("width"), data.get("height")
            if isinstance(width, int) and isinstance(height, int) and 0 < width <= 1000 and 0 < height <= 1000:
                await tab.set_terminal_size(width, height)
        elif kind == "ping":
            await ws.send_json(["pong", data])
        elif kind == "blur":
            await tab.blur()
        elif kind == "focus":
            await tab.focus()


def _size(request: web.Request, name: str, default: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        return default
    return value if 0 < value <= 1000 else default


def _same_origin(request: web.Request) -> bool:
    """A browser always sends Origin on a websocket; it must name this very host and port."""
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host


def build_app(server: WebServer) -> web.Application:
    app = web.Application(middlewares=[server.guard], client_max_size=MAX_LOGIN_BODY)
    app.router.add_get("/login", server.login_form)
    app.router.add_post("/login", server.login)
    app.router.add_get("/", server.index)
    app.router.add_get("/ws", server.websocket)
    app.router.add_get("/vik/page.js", server.page_js)
    app.router.add_get("/static/js/textual.js", server.textual_js)
    app.router.add_static("/static", page.STATIC_DIR)
    app.on_shutdown.append(server.on_shutdown)
    return app


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def serve(server: WebServer, sock: socket.socket, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM, then end every tab's process and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(build_app(server), access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        announce(url_of(sock))
        await stop.wait()
    finally:
        await runner.cleanup()  # on_shutdown closes the tabs
        await server.tabs.close_all()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def run(server: WebServer, sock: socket.socket, announce: Callable[[str], None]) -> int:
    try:
        asyncio.run(serve(server, sock, announce))
    except OSError as exc:
        print(f"vik-tui web: {exc}", file=sys.stderr)
        return 1
    return 0
