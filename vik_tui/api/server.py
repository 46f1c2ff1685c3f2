"""The HTTP API server: an aiohttp application in the supervisor's own loop.

`start(api, sockets)` serves it on the sockets `front` listens on (`service/api.sock` always,
and the TCP socket `cli` bound for `--port`) once their first client knocks. Two middlewares
do the cross-cutting work: `_envelope` turns every error into `{"error": {"code", "message"}}`
(keeping 405's `Allow`), and `_guard` refuses a token in the query string, asks TCP clients for
the bearer token (constant-time compare), and caps requests in flight. Handlers read the
supervisor's typed view and call its commands; nothing here can block or stop the engine.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from vik_tui.api import bodies, wire
from vik_tui.api.records import read_from, read_tail
from vik_tui.api.routes import (
    BY_NAME,
    LAST_EVENT_ID_HEADER,
    MAX_BODY_BYTES,
    MAX_STREAM_CLIENTS,
    RECORDS_DEFAULT_LIMIT,
    RECORDS_MAX_LIMIT,
)
from vik_tui.api.stream import Client, EventHub, message
from vik_tui.config.ids import unsafe_id_reason
from vik_tui.engine.clock import now_iso
from vik_tui.engine.explain import explain
from vik_tui.engine.places.local import WorkspaceError
from vik_tui.engine.service.paths import Layout, UnsafeIssueId
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.view import EngineView, ExplainCode, IssueView, Refused

MAX_IN_FLIGHT = 256  # requests being answered at once (streams included); one more gets 503
KEEPALIVE_SEC = 15.0  # an SSE comment this often on a quiet stream, so a dead peer is noticed
QUERY_TOKEN_NAMES = ("token", "access_token")
SESSION_NAME = re.compile(
    r"^(?P<stage>[^/\x00]+)-(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer that is an error: status, a stable code for scripts, and a sentence for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = wire.dump(wire.ErrorBody(wire.ErrorDetail(code, message)))
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=wire.dump(body), content_type="application/json", headers=headers)


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@web.middleware
async def _envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        text = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 405:
            text = f"{request.method} is not allowed here; allowed: {exc.headers.get('Allow', '')}"
        elif exc.status == 413:
            text = f"the request body is larger than {MAX_BODY_BYTES} bytes"
        elif exc.status == 404:
            text = f"no such route: {request.path}"
        return error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), text or exc.reason, headers)


class Api:
    """The handlers, bound to one supervisor and its event hub."""

    def __init__(self, supervisor: Supervisor, hub: EventHub, token: str) -> None:
        self.supervisor = supervisor
        self.layout: Layout = supervisor.layout
        self.hub = hub
        self._token = token.encode()
        self.in_flight = 0
        self.streams: set[Client] = set()
        self.hostname = socket.gethostname()

    # -- middleware --------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(name in request.query for name in QUERY_TOKEN_NAMES):
            raise ApiError(
                401,
                "token_in_query",
                "a token is never accepted in the query string (it ends up in logs and histories);"
                " send it as the header `Authorization: Bearer <token>`",
            )
        if _is_tcp(request) and not self._authorized(request):
            raise ApiError(
                401,
                "unauthorized",
                "this API needs `Authorization: Bearer <token>`; the token is in service/api.token"
                " (shown by `vik-tui status`)",
                {"WWW-Authenticate": 'Bearer realm="vik-tui"'},
            )
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes")
        if self.in_flight >= MAX_IN_FLIGHT:
            raise ApiError(503, "too_many_clients", f"{MAX_IN_FLIGHT} requests are being answered; try again")
        self.in_flight += 1
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self._token)

    # -- helpers -------------------------------------------------------------------------------
    def _issue(self, request: web.Request, view: EngineView | None = None) -> IssueView:
        issue_id = request.match_info["issue_id"]
        issue = (view or self.supervisor.snapshot()).find_issue(issue_id)
        if issue is None:
            raise ApiError(404, "issue_not_found", f"no issue {issue_id!r} in the supervisor's state")
        return issue

    def _workspace(self, issue: IssueView) -> str | None:
        """Where the workspace is, on its host (Symphony's `workspace.path`)."""
        try:
            return self.supervisor.place_of(issue.id).workdir(issue.id)
        except (WorkspaceError, UnsafeIssueId):
            return None

    def _local_workspace(self, issue: IssueView) -> str | None:
        """`Engine.workspace_path`: the workspace's path on the supervisor's machine."""
        path = self.supervisor.workspace_path(issue.id)
        return None if isinstance(path, Refused) else path

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()  # 413 past client_max_size
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "bad_json", f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_json", "the request body must be a JSON object")
        return data

    # -- vik's routes (Symphony's bodies) ------------------------------------------------------
    async def state(self, request: web.Request) -> web.StreamResponse:
        view = self.supervisor.snapshot()
        body = bodies.state_body(view, self.hub, self._local_workspace, os.getpid())
        return json_response(body, headers={LAST_EVENT_ID_HEADER: str(body.last_event_id)})

    async def issue(self, request: web.Request) -> web.StreamResponse:
        view = self.supervisor.snapshot()
        issue = self._issue(request, view)
        said = explain(view, issue.id)
        body = bodies.issue_body(issue, self.hub, self._workspace(issue), self._local_workspace(issue), said)
        return json_response(body)

    async def explain(self, request: web.Request) -> web.StreamResponse:
        """Why the issue is or is not running; a rejected record is explained too (it has no view)."""
        said = explain(self.supervisor.snapshot(), request.match_info["issue_id"])
        if said.code == ExplainCode.UNKNOWN:
            raise ApiError(404, "issue_not_found", said.words)
        return json_response(said)

    async def drain(self, request: web.Request) -> web.StreamResponse:
        await self._json_body(request)
        if self.supervisor.snapshot().stopping:
            raise ApiError(409, "stopping", "the supervisor is already stopping")
        said = self.supervisor.drain()
        return json_response(wire.CommandBody(True, said), status=202)

    async def refresh(self, request: web.Request) -> web.StreamResponse:
        await self._json_body(request)
        coalesced = self.hub.poll_pending
        self.hub.poll_pending = True
        self.supervisor.poll_now()
        return json_response(wire.RefreshBody(queued=True, coalesced=coalesced, requested_at=_now()), status=202)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        issue = self._issue(request)
        stage = data.get("stage")
        if stage is not None and not isinstance(stage, str):
            raise ApiError(400, "bad_request", '"stage" must be a stage name (a string)')
        if stage is None:
            stages = [run.stage for run in issue.runs if run.status.cancellable]
            if not stages:
                raise ApiError(409, "not_running", f"no stage of {issue.id} is running or waiting to retry")
        else:
            run = issue.run_of(stage)
            if run is None:
                raise ApiError(404, "stage_not_found", f"no stage {stage!r} for issue {issue.id!r}")
            if not run.status.cancellable:
                raise ApiError(409, "not_running", f"{issue.id}/{stage} is not running ({run.status})")
            stages = [stage]
        messages = [self.supervisor.cancel(issue.id, name) for name in stages]
        text = "; ".join(f"{name}: {said}" for name, said in zip(stages, messages, strict=True))
        return json_response(wire.CommandBody(True, text, issue.id, tuple(stages)))

    async def retry(self, request: web.Request) -> web.StreamResponse:
        await self._json_body(request)
        issue = self._issue(request)
        stage = request.match_info["stage"]
        run = issue.run_of(stage)
        if run is None:
            raise ApiError(404, "stage_not_found", f"no stage {stage!r} for issue {issue.id!r}")
        if run.status.active:
            raise ApiError(409, "already_running", f"{issue.id}/{stage} is already {run.status}")
        said = self.supervisor.retry(issue.id, stage)
        ok = said in ("retrying",) or said.startswith("queued")
        if not ok:
            raise ApiError(409, "not_retried", said)
        return json_response(wire.CommandBody(True, said, issue.id, (stage,)))

    async def pause(self, request: web.Request) -> web.StreamResponse:
        await self._json_body(request)
        self.supervisor.pause()
        return json_response(wire.CommandBody(True, "intake paused", paused=True))

    async def resume(self, request: web.Request) -> web.StreamResponse:
        await self._json_body(request)
        self.supervisor.resume()
        return json_response(wire.CommandBody(True, "intake resumed", paused=False))

    async def stop(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        if data.get("confirm") is not True:
            raise ApiError(
                400,
                "confirm_required",
                'stopping the supervisor stops every running agent; send {"confirm": true} to mean it',
            )
        self.supervisor.stop()
        return json_response(wire.CommandBody(True, "stopping: running stages are cancelled cleanly"), status=202)

    # -- ours ----------------------------------------------------------------------------------
    async def view(self, request: web.Request) -> web.StreamResponse:
        last = self.hub.last_id  # the view includes every event up to this one
        body = wire.VIEW.dump_json(self.supervisor.snapshot())
        return web.Response(body=body, content_type="application/json", headers={LAST_EVENT_ID_HEADER: str(last)})

    async def records(self, request: web.Request) -> web.StreamResponse:
        path = self._session_path(request)
        offset = _int_query(request, "offset", None, 0, None)
        limit = _int_query(request, "limit", RECORDS_DEFAULT_LIMIT, 0, RECORDS_MAX_LIMIT)
        assert limit is not None
        try:
            if offset is None:
                found = await asyncio.to_thread(read_tail, path, limit)
            else:
                found = await asyncio.to_thread(read_from, path, offset, limit)
        except FileNotFoundError:
            raise ApiError(404, "session_not_found", "the session file is not there (yet)") from None
        except OSError as exc:
            raise ApiError(500, "unreadable", f"cannot read the session file: {exc.strerror or exc}") from None
        records, next_offset, size = found
        return json_response(wire.RecordsBody(tuple(records), next_offset, size))

    def _session_path(self, request: web.Request) -> Path:
        """The session file a request names, only if the supervisor knows that session: ids
        that could leave `sessions/` (`..`, `/`, NUL, absolute paths) never reach `open`."""
        issue_id = request.match_info["issue_id"]
        name = request.match_info["session_file_name"]
        not_found = ApiError(404, "session_not_found", f"no session {name!r} of issue {issue_id!r}")
        if unsafe_id_reason(issue_id):
            raise not_found
        match = SESSION_NAME.match(name)
        if match is None or unsafe_id_reason(match["stage"]):
            raise not_found
        issue = self.supervisor.snapshot().find_issue(issue_id)
        session = issue.find_session(match["uuid"]) if issue is not None else None
        if session is None or Path(session.session_file).name != name:
            raise not_found
        try:
            return self.layout.session_file(issue_id, match["stage"], match["uuid"])  # re-checks: inside sessions/
        except UnsafeIssueId:
            raise not_found from None

    async def diff(self, request: web.Request) -> web.StreamResponse:
        issue = self._issue(request)
        return json_response(wire.DiffBody(issue.id, await self.supervisor.workspace_diff(issue.id)))

    async def shell(self, request: web.Request) -> web.StreamResponse:
        issue = self._issue(request)
        plan = await self.supervisor.shell_plan(issue.id)
        if isinstance(plan, Refused):
            raise ApiError(409, "no_workspace", plan.reason)
        return json_response(wire.TerminalPlan.of(plan, issue.host, self.hostname))

    async def takeover(self, request: web.Request) -> web.StreamResponse:
        issue = self._issue(request)
        session_uuid = request.match_info["session_uuid"]
        if issue.find_session(session_uuid) is None:
            raise ApiError(404, "session_not_found", f"no session {session_uuid!r} of issue {issue.id!r}")
        plan = await self.supervisor.takeover_plan(issue.id, session_uuid)
        if isinstance(plan, Refused):
            raise ApiError(409, "takeover_refused", plan.reason)
        return json_response(wire.TerminalPlan.of(plan, issue.host, self.hostname))

    async def events(self, request: web.Request) -> web.StreamResponse:
        if len(self.streams) >= MAX_STREAM_CLIENTS:
            raise ApiError(503, "too_many_clients", f"{MAX_STREAM_CLIENTS} event streams are open; try again later")
        asked = request.headers.get("Last-Event-ID", "").strip()
        last_seen: int | None = None
        if asked:
            if not asked.isdigit():
                raise ApiError(400, "bad_request", f"Last-Event-ID must be an event id (got {asked[:40]!r})")
            last_seen = int(asked)
        transport = request.transport
        client = Client(drop=transport.abort if transport is not None else lambda: None)
        # register before the first await: no event can fall between the replay and the queue
        backlog, lost = self.hub.since(last_seen) if last_seen is not None else ([], False)
        self.hub.clients.add(client)
        self.streams.add(client)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        try:
            await response.prepare(request)
            hello = wire.Hello(
                os.getpid(), str(self.supervisor.workflow_path), self.hub.last_id, ring=self.hub.ring.maxlen or 0
            )
            await response.write(message("hello", wire.adapter(wire.Hello).dump_python(hello, mode="json")))
            if lost:
                reset = {"event": wire.STREAM_RESET, "asked": last_seen, "last": self.hub.last_id}
                reset["oldest"] = self.hub.oldest
                await response.write(message(wire.STREAM_RESET, reset))
            elif backlog:
                await response.write(b"".join(old.frame for old in backlog))
            while True:
                if not await client.wait(KEEPALIVE_SEC):
                    await response.write(b": keepalive\n\n")
                    continue
                if client.overflowed:  # dropped: its connection is aborted
                    break
                data, ending = client.take()  # all that queued up since the last write, in one
                if data:
                    await response.write(data)
                if ending:  # the server is stopping
                    break
        except ConnectionError:
            pass  # the client went away (or was dropped for not reading): nothing to tell anyone
        finally:
            self.hub.clients.discard(client)
            self.streams.discard(client)
        return response


def _is_tcp(request: web.Request) -> bool:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is None or sock.family != socket.AF_UNIX  # unknown counts as TCP: ask for the token


def _int_query(request: web.Request, name: str, default: int | None, low: int, high: int | None) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise ApiError(400, "bad_request", f"{name} must be a non-negative integer (got {text[:40]!r})")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high} (got {value})")
    return value


def _now() -> str:
    return now_iso()


def build_app(api: Api) -> web.Application:
    app = web.Application(middlewares=[_envelope, api.guard], client_max_size=MAX_BODY_BYTES)
    for name, route in BY_NAME.items():
        app.router.add_route(route.method, route.path, getattr(api, name))
    return app


async def start(api: Api, sockets: Sequence[socket.socket]) -> web.AppRunner:
    """Serve `api` on listening `sockets` (`front` bound them); the runner stops it (`cleanup`)."""
    runner = web.AppRunner(build_app(api), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
