"""`AttachedEngine`: the UI's `Engine` over a running supervisor's HTTP API. Never a second engine.

It keeps a mirror of the supervisor's view (fetched on attach, refetched after events that
change it: one fetch in flight, at most one per MIN_REFETCH_SEC), republishes the event stream
to the app's listeners exactly as `Supervisor.emit` does, and serves the panes' replays from the
session-records route. When the supervisor restarts or goes away it says so (`attachment()`)
and reconnects by itself; `Last-Event-ID` makes the stream resume after the last event it
published, so none is lost or shown twice. `stop()` only detaches: the agents keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import aiohttp
import orjson

from vik_tui.agents.events import AgentEvent, Error
from vik_tui.api import wire
from vik_tui.api.endpoint import short_path
from vik_tui.api.routes import LAST_EVENT_ID_HEADER, RECORDS_MAX_LIMIT, url_for
from vik_tui.api.sse import read_events
from vik_tui.api.target import ApiTarget
from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.paths import unsafe_id_reason
from vik_tui.engine.view import EngineView, IntakeView, Refused, Terminal

MIN_REFETCH_SEC = 0.2  # the view is refetched at most 5×/s (the table repaints at most 4×/s)
STREAM_REFETCH_SEC = 2.0  # while only agent output flows: tokens and counts, every 2 s
RECONNECT_FIRST_SEC = 0.1
RECONNECT_MAX_SEC = 2.0
REQUEST_TIMEOUT_SEC = 30.0
HELLO = "hello"  # the stream's first message: who serves it (wire.Hello)


class WireError(ValueError):
    """A body or event this client cannot read (another version, a proxy's error page)."""


class AttachRefused(OSError):
    """The first attach failed (wrong address, no supervisor there, a refused token): the app
    exits with this message instead of retrying for ever."""


class ApiError(Exception):
    """The supervisor answered with an error envelope; the message is its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AttachedEngine:
    """An `Engine` (ui/engine_api.py) whose supervisor runs in another process."""

    def __init__(self, target: ApiTarget, workflow_path: Path | None = None) -> None:
        self.target = target
        self.workflow_path = workflow_path or target.workflow_path or Path(target.describe)
        self.before_first_dispatch: Callable[[], Awaitable[None]] | None = None  # never dispatches
        self.on_change: Callable[[], None] | None = None  # the app repaints when the mirror moved
        self.supervisor_pid: int | None = None
        self.connected = False
        self.ever_connected = False
        self.last_event_id: int | None = None
        self.root: Path | None = target.root  # the supervisor's workflow root (its own machine's path)
        self._listeners: list[ee.Listener] = []
        self._view = EngineView(workflow=str(self.workflow_path), name=self.workflow_path.name)
        self._view_at = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        self._response: aiohttp.ClientResponse | None = None
        self._want_view = asyncio.Event()
        self._stream_dirty_since: float | None = None
        self._stopping_supervisor = False
        self._gone_reason: str | None = None
        self._plans: dict[tuple[tuple[str, ...], str], wire.TerminalPlan] = {}  # what the supervisor said of them

    # -- the Engine protocol -----------------------------------------------------------------
    def subscribe(self, listener: ee.Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _publish(self, event: ee.EngineEvent) -> None:
        """As `Supervisor.emit`: a listener that raises is detached, and the others told."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                if listener in self._listeners:
                    self._listeners.remove(listener)
                note = ee.Log(level="error", message=f"a subscriber failed and was detached: {exc}")
                for other in list(self._listeners):
                    with contextlib.suppress(Exception):
                        other(note)

    async def run(self) -> int:
        """Stay attached until `stop()` (detach) or the supervisor stopped on our request."""
        self._loop = asyncio.get_running_loop()
        with contextlib.ExitStack() as stack:
            sock = self.target.socket
            path = stack.enter_context(short_path(sock)) if sock is not None else None
            self._session = aiohttp.ClientSession(
                connector=self.target.connector(path),
                headers=self.target.headers(),
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10),
            )
            refetcher = asyncio.ensure_future(self._refetch_loop())
            attached = asyncio.ensure_future(self._stay_attached())
            detached = asyncio.ensure_future(self._stopped.wait())
            try:  # a detach is immediate, even while a request waits on a slow supervisor
                await asyncio.wait({attached, detached}, return_when=asyncio.FIRST_COMPLETED)
                if attached.done():
                    attached.result()  # AttachRefused goes to the app
            finally:
                for task in (attached, detached):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                self.connected = False
                refetcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refetcher
                await self._session.close()
        return 0

    async def _stay_attached(self) -> None:
        delay = RECONNECT_FIRST_SEC
        while not self._stopped.is_set():
            try:
                await self._attach_once()
                delay = RECONNECT_FIRST_SEC
            except ApiError as exc:
                if exc.status == 401:
                    raise AttachRefused(f"the supervisor at {self.target.describe} refused the token: {exc}") from None
                if not self.ever_connected:
                    raise AttachRefused(f"{self.target.describe}: {exc}") from None
                self._gone(str(exc))
            except (aiohttp.ClientError, OSError, WireError, TimeoutError) as exc:
                if not self.ever_connected:  # a wrong address or a dead socket: say so, do not spin
                    raise AttachRefused(f"cannot attach to {self.target.describe}: {_reason(exc)}") from None
                self._gone(_reason(exc))
            if self._stopped.is_set() or self._stopping_supervisor:
                return
            self._gone(self._gone_reason or "the event stream ended")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            delay = min(RECONNECT_MAX_SEC, delay * 2)

    def cancel(self, issue_id: str, stage: str) -> str:
        body = {"stage": stage}
        self._command(url_for("cancel", issue_id=issue_id), body)
        return f"cancel sent to the supervisor (pid {self.supervisor_pid})"

    def retry(self, issue_id: str, stage: str) -> str:
        self._command(url_for("retry", issue_id=issue_id, stage=stage), None)
        return f"retry sent to the supervisor (pid {self.supervisor_pid})"

    def poll_now(self) -> None:
        self._command(url_for("refresh"), None)

    def pause(self) -> None:
        self._command(url_for("pause"), None)

    def resume(self) -> None:
        self._command(url_for("resume"), None)

    def stop(self, reason: str = "detached") -> None:
        """Detach: the supervisor and its agents go on."""
        self._stopped.set()
        if self._response is not None:
            self._response.close()

    def snapshot(self) -> EngineView:
        """The mirror, its countdowns moved on by the time since it was fetched."""
        view, elapsed = self._view, time.monotonic() - self._view_at
        if elapsed < 0.05 or not (view.intake.next_poll_in is not None or view.retries):
            return view
        intake = view.intake
        if intake.next_poll_in is not None:
            intake = dataclasses.replace(intake, next_poll_in=max(0.0, intake.next_poll_in - elapsed))
        retries = tuple(dataclasses.replace(r, due_in=max(0.0, r.due_in - elapsed)) for r in view.retries)
        return _with(view, intake, retries)

    def workspace_path(self, issue_id: str) -> str | Refused:
        """Where the issue's workspace is on the supervisor's machine (its root is learned on attach)."""
        reason = unsafe_id_reason(issue_id)
        if reason is not None:
            return Refused(f"issue id {issue_id!r}: {reason}")
        if self.root is None:
            return Refused("the supervisor's workspace root is not known yet")
        return str(self.root / "issues" / issue_id)

    async def workspace_diff(self, issue_id: str) -> str:
        try:
            body = await self._get(url_for("diff", issue_id=issue_id))
        except ApiError as exc:
            return f"({exc})"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"(the supervisor cannot be reached: {_reason(exc)})"
        if isinstance(body, dict):
            return str(body.get("diff", ""))
        return str(body)

    async def shell_plan(self, issue_id: str) -> Terminal | Refused:
        return await self._plan(url_for("shell", issue_id=issue_id))

    async def takeover_plan(self, issue_id: str, session_uuid: str) -> Terminal | Refused:
        return await self._plan(url_for("takeover", issue_id=issue_id, session_uuid=session_uuid))

    async def session_records(self, session_file: str, limit: int | None = None) -> list[AgentEvent]:
        """Through the records route: a pane's replay is the file's tail, in one request."""
        try:
            return await self._records(session_file, limit)
        except ApiError as exc:
            return [Error(detail=f"cannot replay the session: {exc}")]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return [Error(detail=f"cannot replay the session: the supervisor cannot be reached ({_reason(exc)})")]

    async def load_history(self) -> int:
        return 0  # the supervisor has loaded it; its view carries it

    # -- attached-only (ui/engine_api.Attached) ------------------------------------------------
    def attachment(self) -> str:
        """The header's words for the connection."""
        if self.connected:
            return f"attached to pid {self.supervisor_pid}"
        if self._stopping_supervisor:
            return "supervisor stopping…"
        if not self.ever_connected:
            return f"attaching to {self.target.describe}…"
        return "supervisor gone — reconnecting…"

    def stop_supervisor(self) -> None:
        """Ask the supervisor to stop its agents cleanly and exit; `run()` returns once it has."""
        self._stopping_supervisor = True
        self._command(url_for("stop"), {"confirm": True})

    async def _plan(self, route: str) -> Terminal | Refused:
        """The supervisor's shell or take-over plan; its refusal (or no answer) as a Refused."""
        try:
            body = await self._get(route)
        except ApiError as exc:
            return Refused(str(exc))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Refused(f"the supervisor cannot be reached: {_reason(exc)}")
        try:
            plan: wire.TerminalPlan = wire.TERMINAL_PLAN.validate_python(body)
        except ValueError:
            return Refused("the supervisor's plan cannot be read")
        self._plans[plan.argv, plan.cwd] = plan
        return plan.terminal()

    def runs_here(self, plan: Terminal) -> bool:
        """A plan runs here when the supervisor is on this machine (its socket, or loopback TCP
        from a host of the same name: not an `ssh -L` tunnel from elsewhere) and its directory
        exists here."""
        told = self._plans.get((plan.argv, str(plan.cwd)))
        same_host = told is None or not told.supervisor_host or told.supervisor_host == socket.gethostname()
        return self.target.on_this_machine and same_host and plan.cwd.is_dir()

    # -- connection ----------------------------------------------------------------------------
    async def _attach_once(self) -> None:
        """Learn who runs, mirror the view, then publish the stream until it ends.

        First attach: the view, then exactly the events that followed it (`X-Last-Event-Id`).
        Reconnect to the same supervisor: the events after the last one published (its ring
        replays them; `stream_reset` when they fell out of it). A new supervisor (another
        pid): its whole ring, from id 0."""
        state = await self._get(url_for("state"))
        pid = state.get("pid") if isinstance(state, dict) else None
        if isinstance(pid, int) and pid != self.supervisor_pid:
            if self.supervisor_pid is not None:
                self.last_event_id = 0  # a new supervisor: everything it said is news
            self.supervisor_pid = pid
        view_id = await self._fetch_view()
        if self.last_event_id is None:
            self.last_event_id = view_id
        assert self._session is not None
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        async with self._session.get(self.target.url_of(url_for("events")), headers=headers) as response:
            if response.status != 200:
                raise await _api_error(response)
            self._response = response
            try:
                async for sse in read_events(response.content):
                    if sse.event == HELLO:
                        self._hello(sse.data)
                        continue
                    if sse.id is not None:
                        if self.last_event_id is not None and sse.id <= self.last_event_id:
                            continue  # already published (a replay that overlaps)
                        self.last_event_id = sse.id
                    self._on_stream_event(sse.event, sse.data)
            finally:
                self._response = None

    def _hello(self, data: str) -> None:
        try:
            hello = wire.load(wire.Hello, data)
        except ValueError as exc:
            raise WireError(f"the supervisor's hello cannot be read: {exc}") from None
        self.supervisor_pid = hello.pid
        self.connected = self.ever_connected = True
        self._gone_reason = None
        self._changed()

    def _on_stream_event(self, name: str, data: str) -> None:
        if name == wire.STREAM_RESET:
            self._publish(ee.Log(level="warning", message="events were missed while detached; the view was refetched"))
            self._want_view.set()
            return
        event: ee.EngineEvent | None
        try:
            obj = orjson.loads(data)
            if name == ee.AgentEvents.name and isinstance(obj, dict):
                event = _agent_events(obj)
            else:
                event = wire.event_from_json(obj) if isinstance(obj, dict) else None
        except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            # one event a newer or odd supervisor sent: say so and go on (a reconnect would not help)
            self._publish(
                ee.Log(level="warning", message=f"an event {name!r} this UI cannot read was skipped: {exc!r}")
            )
            return
        if event is None:
            return  # a kind this version does not know
        if isinstance(event, ee.SupervisorStarted):
            self.supervisor_pid = event.pid
            self.root = Path(event.root)
        if isinstance(event, ee.AgentEvents):
            if self._stream_dirty_since is None:
                self._stream_dirty_since = time.monotonic()
        else:
            self._want_view.set()
        self._publish(event)

    def _gone(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        self._gone_reason = reason
        if was:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- the mirror ------------------------------------------------------------------------------
    async def _refetch_loop(self) -> None:
        """One view fetch at a time, at most one per MIN_REFETCH_SEC; agent output alone asks
        for one every STREAM_REFETCH_SEC (for token counts)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._want_view.wait(), STREAM_REFETCH_SEC / 4)
            dirty = self._stream_dirty_since
            due = self._want_view.is_set() or (dirty is not None and time.monotonic() - dirty >= STREAM_REFETCH_SEC)
            if not due:
                continue
            if not self.connected:  # the reconnect fetches the view itself; do not spin meanwhile
                await asyncio.sleep(MIN_REFETCH_SEC)
                continue
            self._want_view.clear()
            self._stream_dirty_since = None
            with contextlib.suppress(aiohttp.ClientError, OSError, WireError, ApiError, TimeoutError):
                await self._fetch_view()
            await asyncio.sleep(MIN_REFETCH_SEC)

    async def _fetch_view(self) -> int | None:
        """Mirror `/view`; returns the newest event id it reflects."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SEC)
        async with self._session.get(self.target.url_of(url_for("view")), timeout=timeout) as response:
            if response.status != 200:
                raise await _api_error(response)
            body = await response.read()
            last = response.headers.get(LAST_EVENT_ID_HEADER, "")
        try:  # a 10,000-issue view takes a while to read: off the UI loop
            view = (
                await asyncio.to_thread(wire.VIEW.validate_json, body)
                if len(body) > 256 * 1024
                else wire.VIEW.validate_json(body)
            )
        except ValueError as exc:
            raise WireError(f"the supervisor's view cannot be read: {exc}") from None
        if view.workflow:
            self.workflow_path = Path(view.workflow)
        if self.root is None:  # reached by URL: a session file's path names it (root/sessions/<id>/<file>)
            session = next((i.sessions[0] for i in view.issues if i.sessions), None)
            if session is not None:
                self.root = Path(session.session_file).parents[2]
        self._view, self._view_at = view, time.monotonic()
        self._changed()
        return int(last) if last.isdigit() else None

    # -- requests --------------------------------------------------------------------------------
    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SEC)
        async with self._session.get(self.target.url_of(path), params=params, timeout=timeout) as response:
            if response.status != 200:
                raise await _api_error(response)
            return orjson.loads(await response.read())

    async def _post(self, path: str, body: dict[str, Any] | None) -> Any:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SEC)
        data = orjson.dumps(body) if body is not None else b"{}"
        headers = {"Content-Type": "application/json"}
        url = self.target.url_of(path)
        async with self._session.post(url, data=data, headers=headers, timeout=timeout) as response:
            if response.status not in (200, 202):
                raise await _api_error(response)
            return orjson.loads(await response.read() or b"null")

    def _command(self, route: str, body: dict[str, Any] | None) -> None:
        """Send a command without holding up the key that asked; a refusal goes to the log pane."""
        if self._loop is None or self._session is None:
            self._publish(ee.Log(level="error", message=f"not attached: {route} was not sent"))
            return

        async def send() -> None:
            try:
                await self._post(route, body)
            except ApiError as exc:
                self._publish(ee.Log(level="warning", message=f"the supervisor refused {route}: {exc}"))
                if self._stopping_supervisor:  # the app waits for the end: detach rather than hang
                    self.stop()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if not self._stopping_supervisor:
                    self._publish(ee.Log(level="error", message=f"{route} was not sent: {_reason(exc)}"))
            self._want_view.set()

        self._loop.create_task(send())

    async def _records(self, session_file: str, limit: int | None) -> list[AgentEvent]:
        """A session file's records through the API, paged from the start; only the last
        `limit` are kept (the pane's bound), so a long session costs time, not memory."""
        path = Path(session_file)
        route = url_for("records", issue_id=path.parent.name, session_file_name=path.name)
        if limit is not None and limit <= RECORDS_MAX_LIMIT:  # the pane's replay: the file's tail, one request
            page = await self._get(route, {"limit": str(limit)})
            items = page.get("records") if isinstance(page, dict) else None
            return [AgentEvent.from_record(r) for r in items if isinstance(r, dict)] if isinstance(items, list) else []
        kept: deque[AgentEvent] = deque(maxlen=limit) if limit is not None else deque()
        offset = 0
        while True:
            page = await self._get(route, {"offset": str(offset), "limit": str(RECORDS_MAX_LIMIT)})
            if not isinstance(page, dict):
                break
            items = page.get("records")
            records = (
                [AgentEvent.from_record(r) for r in items if isinstance(r, dict)] if isinstance(items, list) else []
            )
            kept.extend(records)
            next_offset = page.get("next_offset")
            if not records or not isinstance(next_offset, int) or next_offset <= offset:
                break
            offset = next_offset
        return list(kept)


class LazyRecords(Sequence[AgentEvent]):
    """A batch's session records, decoded when first read. Most batches are of sessions no pane
    shows (the app looks at `records` only for a pane that wants them): with 100 agents
    streaming, decoding every record of every batch would be most of an attached UI's work."""

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: list[Any]) -> None:
        self._raw = raw
        self._decoded: list[AgentEvent] | None = None

    def _all(self) -> list[AgentEvent]:
        if self._decoded is None:
            self._decoded = [AgentEvent.from_record(r) for r in self._raw if isinstance(r, dict)]
            self._raw = []
        return self._decoded

    @overload
    def __getitem__(self, index: int) -> AgentEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AgentEvent]: ...
    def __getitem__(self, index: int | slice) -> AgentEvent | Sequence[AgentEvent]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all()) if self._decoded is not None else sum(isinstance(r, dict) for r in self._raw)

    def __iter__(self) -> Iterator[AgentEvent]:
        return iter(self._all())


def _agent_events(obj: dict[str, Any]) -> ee.AgentEvents:
    """`agent_events` read without pydantic and with its records left for `LazyRecords`."""
    raw = obj.get("records")
    level = obj.get("level", "info")
    return ee.AgentEvents(
        ts=str(obj.get("ts", "")),
        level=level if level in ("debug", "info", "warning", "error") else "info",
        issue=str(obj["issue"]),
        stage=str(obj["stage"]),
        attempt=int(obj["attempt"]),
        session_file=str(obj["session_file"]),
        records=LazyRecords(raw if isinstance(raw, list) else []),
    )


def _with(view: EngineView, intake: IntakeView, retries: tuple[Any, ...]) -> EngineView:
    return dataclasses.replace(view, intake=intake, retries=retries)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__


async def _api_error(response: aiohttp.ClientResponse) -> ApiError:
    """The `{"error": {"code", "message"}}` envelope, or the status line when there is none."""
    code, message = f"http_{response.status}", f"HTTP {response.status} {response.reason or ''}".strip()
    with contextlib.suppress(ValueError, aiohttp.ClientError):
        body = orjson.loads(await response.read())
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code", code))
            message = str(error.get("message", message))
    return ApiError(response.status, code, message)


async def probe(target: ApiTarget, timeout: float = 10.0) -> str | None:
    """Why `target` cannot be attached to (nothing listens, a refused token, not our API), or
    None: asked once before the screen opens, so a wrong address is one line, not a flash."""
    with contextlib.ExitStack() as stack:
        sock = target.socket
        path = stack.enter_context(short_path(sock)) if sock is not None else None
        async with aiohttp.ClientSession(
            connector=target.connector(path),
            headers=target.headers(),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as session:
            try:
                async with session.get(target.url_of(url_for("state"))) as response:
                    if response.status == 200:
                        return None
                    error = await _api_error(response)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                return f"cannot attach to {target.describe}: {_reason(exc)}"
    if error.status == 401:
        return f"the supervisor at {target.describe} refused the token: {error}"
    return f"{target.describe} does not answer as a vik-tui supervisor: {error}"
