"""The HTTP API against a real supervisor (fake agents as real processes), served on a real Unix
socket and a real TCP port, asked by a real client (aiohttp's). Every route: no token, a wrong
token, a token in the query string, hostile ids; the error envelope; the event stream (ids,
replay, reset, a client that never reads, the cap)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Project, base_workflow, busy_port
from engine_helpers import Harness
from yarl import URL

from vik_tui.api import endpoint, stream, wire
from vik_tui.api.front import Front, companion
from vik_tui.api.routes import MAX_BODY_BYTES, MAX_STREAM_CLIENTS, ROUTES, url_for
from vik_tui.api.server import Api
from vik_tui.engine import engine_events as ee
from vik_tui.engine.view import IntakeStatus, RunStatus, SessionState

ISSUES = [{"id": "A", "title": "first", "state": "todo"}, {"id": "B", "title": "second", "state": "todo"}]


@dataclass
class Served:
    harness: Harness
    front: Front
    unix: str  # a connectable path to service/api.sock (short enough for sun_path)
    tcp_url: str
    token: str

    @property
    def supervisor(self) -> Any:
        return self.harness.supervisor

    @property
    def api(self) -> Api:
        """The server's handlers: there once a client connected (the server starts then)."""
        assert self.front.api is not None, "no client connected yet: the server is not loaded"
        return self.front.api

    def unix_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession("http://vik-tui", connector=aiohttp.UnixConnector(path=self.unix))

    def tcp_session(self, token: str | None = None) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return aiohttp.ClientSession(self.tcp_url, headers=headers)


def talking_workflow(project: Project, seconds: float = 60.0) -> Path:
    """Two issues whose agents talk steadily (a tool call and a message every 0.1 s) for a while."""
    project.set_issues(ISSUES)
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": seconds, "--interval": 0.1}
    return project.write(wf)


@contextlib.asynccontextmanager
async def serving(workflow_path: Path) -> AsyncIterator[Served]:
    """A supervisor running the workflow, serving the API on its socket and an ephemeral port."""
    harness = Harness(workflow_path)
    supervisor = harness.supervisor
    tcp = endpoint.listen_tcp("127.0.0.1", 0, allow_remote=False)
    supervisor.bind_address, supervisor.port = tcp.getsockname()[:2]
    captured: list[Front] = []

    factory = companion(supervisor, tcp)  # as `cli` registers it: the hub listens from now on

    @contextlib.asynccontextmanager
    async def capturing() -> AsyncIterator[Front]:
        async with factory() as front:
            captured.append(front)
            yield front

    supervisor.add_companion(capturing)
    harness.start()
    try:
        await harness.wait_for(lambda: captured and supervisor.layout.api_socket.exists())
        token = endpoint.read_token(supervisor.layout.api_token_file)
        assert token
        with endpoint.short_path(supervisor.layout.api_socket) as unix:
            yield Served(harness, captured[0], unix, f"http://127.0.0.1:{supervisor.port}", token)
    finally:
        if harness.task is not None and not harness.task.done():
            await harness.stop()


@pytest.fixture
async def served(project: Project) -> AsyncIterator[Served]:
    async with serving(talking_workflow(project)) as s:
        await s.harness.wait_for(lambda: len(s.harness.named(ee.StageStarted)) == 2)
        yield s


def sample_path(route_name: str, session_file_name: str = "plan-x.jsonl", session_uuid: str = "x") -> str:
    params = {"issue_id": "A", "stage": "plan", "session_file_name": session_file_name, "session_uuid": session_uuid}
    path = next(r.path for r in ROUTES if r.name == route_name)
    return url_for(route_name, **{k: v for k, v in params.items() if "{" + k + "}" in path})


async def call(session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as response:
        if response.content_type == "text/event-stream":
            return response.status, None
        return response.status, await response.json(content_type=None)


def session_name(s: Served, issue_id: str = "A") -> str:
    issue = s.supervisor.snapshot().find_issue(issue_id)
    return Path(issue.sessions[0].session_file).name


# -- the endpoint ---------------------------------------------------------------------------------
async def test_socket_and_token_are_owner_only_and_state_json_names_the_port(served: Served) -> None:
    layout = served.supervisor.layout
    sock_mode = os.stat(layout.api_socket).st_mode
    assert stat.S_ISSOCK(sock_mode) and stat.S_IMODE(sock_mode) == 0o600
    assert stat.S_IMODE(os.stat(layout.api_token_file).st_mode) == 0o600
    assert len(served.token) >= 40
    state = json.loads(layout.state_file.read_text())
    assert state["port"] == served.supervisor.port != 0 and state["bind_address"] == "127.0.0.1"
    assert not [p for p in layout.service_dir.iterdir() if p.name.startswith(".api.sock")]  # no temp name left


async def test_the_socket_is_removed_at_exit_and_a_stale_one_replaced(project: Project) -> None:
    path = talking_workflow(project, seconds=0.2)
    async with serving(path) as s:
        layout = s.supervisor.layout
        await s.harness.stop()
    assert not layout.api_socket.exists()
    # a killed supervisor leaves its socket behind: a dead socket file at the path
    dead = socket.socket(socket.AF_UNIX)
    with endpoint.short_path(layout.api_socket) as short:
        dead.bind(short)
    dead.close()
    assert stat.S_ISSOCK(os.lstat(layout.api_socket).st_mode)
    async with serving(path) as s, s.unix_session() as http:
        status, body = await call(http, "GET", url_for("state"))
        assert status == 200 and body["pid"] == os.getpid()


# -- intruders ------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_every_route_refuses_tcp_without_the_right_token_and_any_token_in_the_query(
    served: Served, route: Any
) -> None:
    path = sample_path(route.name)
    for token in (None, "", "wrong", served.token[:-1], served.token + "x"):
        async with served.tcp_session(token) as http:
            status, body = await call(http, route.method, path)
        assert status == 401, (token, status, body)
        assert body["error"]["code"] == "unauthorized"
    async with served.tcp_session(served.token) as http:
        for name in ("token", "access_token"):
            status, body = await call(http, route.method, path, params={name: served.token})
            assert status == 401 and body["error"]["code"] == "token_in_query", body
            assert "Authorization: Bearer" in body["error"]["message"]
        status, _ = await call(http, route.method, path) if route.name != "stop" else (0, None)
        assert status != 401  # the right token in the header is let in
    async with served.unix_session() as http:
        status, body = await call(http, route.method, path, params={"token": "x"})
        assert status == 401 and body["error"]["code"] == "token_in_query"


async def test_the_unix_socket_needs_no_token(served: Served) -> None:
    async with served.unix_session() as http:
        status, body = await call(http, "GET", url_for("state"))
    assert status == 200 and body["counts"]["running"] == 2


HOSTILE = ["..", "%2e%2e", "%2E%2E", "%2e%2e%2f%2e%2e%2fservice", "..%2f..%2fservice%2fapi.token", "%2fetc%2fpasswd",
           "%00", "A%00", "A%2f..%2f..%2fservice"]  # fmt: skip


async def test_hostile_ids_are_404_and_nothing_outside_sessions_is_opened(served: Served) -> None:
    layout = served.supervisor.layout
    session = served.supervisor.snapshot().find_issue("A").sessions[0]
    uuid = session.session_uuid
    await served.harness.wait_for(lambda: Path(session.session_file).stat().st_size > 0)
    decoy = layout.root / f"plan-{uuid}.jsonl"  # shaped like a session file, one level above sessions/
    decoy.write_text('{"kind": "message", "text": "SECRET"}\n')
    watched = {str(decoy), str(layout.api_token_file), "/etc/passwd", str(layout.state_file)}
    opened: list[str] = []
    armed = [True]

    def audit(name: str, args: tuple[Any, ...]) -> None:
        if armed[0] and name == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
            path = os.fsdecode(args[0])
            if os.path.realpath(path) in watched or path in watched:
                opened.append(path)

    sys.addaudithook(audit)  # cannot be removed: disarmed at the end
    try:
        async with served.unix_session() as http:
            raw_paths = []
            for bad in HOSTILE:
                raw_paths += [
                    f"/api/v1/issues/{bad}",
                    f"/api/v1/issues/{bad}/diff",
                    f"/api/v1/issues/{bad}/shell",
                    f"/api/v1/issues/{bad}/sessions/{uuid}/takeover",
                    f"/api/v1/issues/A/sessions/{bad}/takeover",
                    f"/api/v1/sessions/{bad}/plan-{uuid}.jsonl/records",
                    f"/api/v1/sessions/A/{bad}/records",
                    f"/api/v1/sessions/A/..%2fplan-{uuid}.jsonl/records",
                    f"/api/v1/sessions/%2e%2e/plan-{uuid}.jsonl/records",
                    f"/api/v1/sessions/A/%2f{str(decoy).lstrip('/').replace('/', '%2f')}/records",
                ]
            for raw in raw_paths:
                async with http.get(URL(raw, encoded=True)) as response:
                    body = await response.json(content_type=None)
                    assert response.status == 404, (raw, response.status, body)
                    assert set(body) == {"error"} and body["error"]["code"].endswith("not_found"), body
                    assert "SECRET" not in json.dumps(body)
            post = f"/api/v1/issues/{HOSTILE[1]}/cancel"
            async with http.post(URL(post, encoded=True)) as response:
                assert response.status == 404
            # the real session is served (the checks above are not refusing everything)
            status, body = await call(http, "GET", url_for("records", issue_id="A", session_file_name=decoy.name))
            assert status == 200 and body["records"][0]["kind"] == "session_started"
            assert "SECRET" not in json.dumps(body)
    finally:
        armed[0] = False
    assert opened == []


async def test_bad_json_huge_bodies_unknown_things_and_wrong_methods(served: Served) -> None:
    async with served.unix_session() as http:
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"), data=b'{"stage": ')
        assert status == 400 and body["error"]["code"] == "bad_json"
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"), data=b"[1, 2]")
        assert status == 400 and body["error"]["code"] == "bad_json"
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"), json={"stage": 3})
        assert status == 400 and body["error"]["code"] == "bad_request"
        huge = b'{"stage": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
        status, body = await call(http, "POST", url_for("refresh"), data=huge)
        assert status == 413 and body["error"]["code"] == "body_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
            for _ in range(20):
                yield b" " * 8192

        status, body = await call(http, "POST", url_for("stop"), data=chunks())
        assert status == 413 and body["error"]["code"] == "body_too_large"
        assert served.supervisor.snapshot().intake.status != IntakeStatus.STOPPING  # the refused stop did not stop it
        async with http.delete(url_for("state")) as response:
            assert response.status == 405 and response.headers["Allow"] == "GET"
            assert (await response.json())["error"]["code"] == "method_not_allowed"
        async with http.get(url_for("refresh")) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
        status, body = await call(http, "GET", "/api/v1/nothing")
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body = await call(http, "GET", url_for("issue", issue_id="NOPE"))
        assert status == 404 and body["error"] == {
            "code": "issue_not_found",
            "message": "no issue 'NOPE' in the supervisor's state",
        }
        status, body = await call(http, "POST", url_for("stop"), json={"confirm": "yes"})
        assert status == 400 and body["error"]["code"] == "confirm_required"
        status, body = await call(http, "GET", url_for("records", issue_id="A", session_file_name=session_name(served)),
                                  params={"offset": "-1"})  # fmt: skip
        assert status == 400 and body["error"]["code"] == "bad_request"
        assert served.supervisor.snapshot().intake.status != IntakeStatus.STOPPING  # the refused stop did not stop it


# -- the routes -------------------------------------------------------------------------------------
async def test_state_issue_and_view_bodies(served: Served) -> None:
    async with served.unix_session() as http:
        status, state = await call(http, "GET", url_for("state"))
        assert status == 200
        assert {"generated_at", "counts", "running", "retrying", "codex_totals", "rate_limits"} <= set(state)
        assert state["counts"]["running"] == 2 and state["counts"]["retrying"] == 0
        first = state["running"][0]
        assert first["issue_id"] == "A" and first["stage"] == "plan" and first["status"] == "running"
        assert first["pid"] > 0 and first["worker_host"] is None
        assert first["workspace_path"] == str(served.supervisor.layout.issue_workdir("A"))
        assert set(first["tokens"]) >= {"input_tokens", "output_tokens", "total_tokens"}
        assert state["paused"] is False and state["pid"] == os.getpid()

        status, issue = await call(http, "GET", url_for("issue", issue_id="B"))
        assert status == 200 and issue["issue_identifier"] == "B" and issue["status"] == "running"
        assert issue["workspace"]["path"] == str(served.supervisor.layout.issue_workdir("B"))
        assert issue["logs"]["codex_session_logs"][0]["path"].endswith(".jsonl")
        assert any(e["event"] == "stage_started" for e in issue["recent_events"])
        assert issue["view"]["runs"][0]["status"] == "running"

        async with http.get(url_for("view")) as response:
            assert response.status == 200 and int(response.headers["X-Last-Event-Id"]) > 0
            view = wire.VIEW.validate_json(await response.read())
        assert [i.id for i in view.issues] == ["A", "B"]
        run = view.find_issue("A").run_of("plan")
        assert run.status == RunStatus.RUNNING and run.session.state == SessionState.RUNNING
        assert view.active_run_count == 2 and view.workflow == str(served.supervisor.workflow_path)


async def test_commands_cancel_retry_pause_resume_refresh(served: Served) -> None:
    sup = served.supervisor
    async with served.unix_session() as http:
        status, body = await call(http, "POST", url_for("refresh"))
        assert status == 202 and body["queued"] is True and body["operations"] == ["poll", "reconcile"]
        status, body = await call(http, "POST", url_for("pause"))
        assert status == 200 and body["paused"] is True and sup.snapshot().intake.paused
        status, body = await call(http, "POST", url_for("resume"))
        assert status == 200 and not sup.snapshot().intake.paused
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"), json={"stage": "nope"})
        assert status == 404 and body["error"]["code"] == "stage_not_found"
        status, body = await call(http, "POST", url_for("retry", issue_id="A", stage="plan"))
        assert status == 409 and body["error"]["code"] == "already_running"
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"), json={"stage": "plan"})
        assert status == 200 and body["ok"] and body["stages"] == ["plan"] and "cancelling" in body["message"]
        await served.harness.wait_event(ee.StageFinished, issue="A")
        assert sup.snapshot().find_issue("A").run_of("plan").status == RunStatus.CANCELLED
        status, body = await call(http, "POST", url_for("cancel", issue_id="A"))
        assert status == 409 and body["error"]["code"] == "not_running"
        status, body = await call(http, "POST", url_for("cancel", issue_id="B"))  # no body: every running stage
        assert status == 200 and body["stages"] == ["plan"]
        await served.harness.wait_event(ee.StageFinished, issue="B")
        status, body = await call(http, "POST", url_for("retry", issue_id="A", stage="plan"))
        assert status == 200 and body["message"] == "retrying"
        await served.harness.wait_for(lambda: len(served.harness.named(ee.StageStarted, issue="A")) == 2)


async def test_records_from_an_offset_tail_a_session_line_by_line(served: Served) -> None:
    name = session_name(served)
    path = url_for("records", issue_id="A", session_file_name=name)
    file = Path(served.supervisor.snapshot().find_issue("A").sessions[0].session_file)
    seen: list[dict[str, Any]] = []
    offset = 0
    async with served.unix_session() as http:
        await served.harness.wait_for(lambda: file.stat().st_size > 2000)
        while offset < 2000:
            status, body = await call(http, "GET", path, params={"offset": str(offset), "limit": "3"})
            assert status == 200 and len(body["records"]) <= 3 and body["next_offset"] > offset
            seen += body["records"]
            offset = body["next_offset"]
        status, tail = await call(http, "GET", path, params={"limit": "2"})
        assert status == 200 and len(tail["records"]) == 2 and tail["next_offset"] >= offset
    lines = file.read_bytes()[:offset].splitlines()
    assert seen == [json.loads(line) for line in lines]  # every whole line once, in order, none cut
    assert seen[0]["kind"] == "session_started"


async def test_diff_shell_and_takeover_plans(served: Served) -> None:
    uuid = served.supervisor.snapshot().find_issue("A").sessions[0].session_uuid
    async with served.unix_session() as http:
        status, body = await call(http, "GET", url_for("diff", issue_id="A"))
        assert status == 200 and body["issue_id"] == "A" and "not a git repository" in body["diff"]
        async with http.get(url_for("shell", issue_id="A")) as response:
            plan = wire.TERMINAL_PLAN.validate_json(await response.read())
        assert plan.cwd == str(served.supervisor.layout.issue_workdir("A")) and plan.host is None
        assert plan.terminal() == await served.supervisor.shell_plan("A")
        status, body = await call(http, "GET", url_for("takeover", issue_id="A", session_uuid=uuid))
        assert status == 409 and body["error"]["code"] == "takeover_refused" and "running" in body["error"]["message"]
        status, body = await call(http, "GET", url_for("takeover", issue_id="A", session_uuid="0" * 8))
        assert status == 404 and body["error"]["code"] == "session_not_found"


async def test_stop_with_confirm_stops_the_supervisor_cleanly(served: Served) -> None:
    async with served.unix_session() as http:
        status, body = await call(http, "POST", url_for("stop"), json={"confirm": True})
    assert status == 202 and body["ok"]
    assert await served.harness.finish() == 0
    finished = served.harness.named(ee.StageFinished)
    assert sorted(e.issue for e in finished) == ["A", "B"] and {e.state for e in finished} == {RunStatus.CANCELLED}
    assert not served.supervisor.layout.api_socket.exists()


# -- the event stream ---------------------------------------------------------------------------------
async def read_messages(response: aiohttp.ClientResponse, count: int, timeout: float = 20.0) -> list[dict[str, str]]:
    """`count` SSE messages (keep-alive comments skipped), each as {"id", "event", "data"}."""
    messages: list[dict[str, str]] = []
    current: dict[str, str] = {}

    async def read() -> None:
        while len(messages) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if not line:
                if current:
                    messages.append(dict(current))
                    current.clear()
                continue
            key, _, value = line.partition(": ")
            current[key] = value

    await asyncio.wait_for(read(), timeout)
    return messages


async def test_events_are_numbered_and_replayed_after_last_event_id(served: Served) -> None:
    async with served.unix_session() as http:
        async with http.get(url_for("events")) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            hello, *events = await read_messages(response, 6)
        assert hello["event"] == "hello" and "id" not in hello
        ids = [int(m["id"]) for m in events]
        assert ids == list(range(ids[0], ids[0] + 5)) and ids[0] > json.loads(hello["data"])["last_event_id"]
        for message in events:
            data = json.loads(message["data"])
            assert data["event"] == message["event"]
            event = wire.event_from_json(data)
            assert event is not None and event.to_json() == data  # the wire form reads back into its class
        async with http.get(url_for("events"), headers={"Last-Event-ID": str(ids[1])}) as response:
            _, *replayed = await read_messages(response, 4)
        assert [int(m["id"]) for m in replayed] == [ids[2], ids[3], ids[4]]
        assert [m["data"] for m in replayed] == [m["data"] for m in events[2:5]]


async def test_the_ring_holds_every_event_from_supervisor_started_on(served: Served) -> None:
    """`supervisor_started` is emitted before the API starts; the hub listens from before it,
    so a client asking from the very beginning (`Last-Event-ID: 0`) gets it first, no reset."""
    assert served.front.hub.ring[0].id == 1 and served.front.hub.ring[0].event.name == "supervisor_started"
    async with served.unix_session() as http, http.get(url_for("events"), headers={"Last-Event-ID": "0"}) as response:
        _, first, second = await read_messages(response, 3)
    assert (first["id"], first["event"], second["id"]) == ("1", "supervisor_started", "2")


async def test_an_agent_batch_streams_the_session_file_lines_as_written(served: Served) -> None:
    """An `agent_events` frame is spliced from the bytes the session writer wrote: the same JSON
    as encoding the event, byte for byte, and the same records as in the session file."""
    hub = served.front.hub
    await served.harness.wait_for(lambda: sum(isinstance(e.event, ee.AgentEvents) for e in hub.ring) >= 4)
    batches = [e for e in hub.ring if isinstance(e.event, ee.AgentEvents)]
    for entry in batches:
        event = entry.event
        assert isinstance(event, ee.AgentEvents) and event.lines.count(b"\n") == len(event.records)
        assert stream.event_data(event) == stream.encode(event.to_json())
        assert entry.frame.endswith(b"data: " + stream.encode(event.to_json()) + b"\n\n")
        session_bytes = Path(event.session_file).read_bytes()
        assert event.lines in session_bytes
    # lines that do not match the records (unknown, or from elsewhere) are not trusted
    event = batches[0].event
    assert isinstance(event, ee.AgentEvents)
    for lines in (b"", b"{}\n" * (len(event.records) + 1)):
        other = ee.AgentEvents(
            issue=event.issue,
            stage=event.stage,
            attempt=event.attempt,
            session_file=event.session_file,
            records=event.records,
            lines=lines,
            ts=event.ts,
        )
        assert stream.event_data(other) == stream.encode(event.to_json())


async def test_an_id_the_ring_no_longer_holds_gets_a_reset_first(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "RING_SIZE", 8)
    async with serving(talking_workflow(project)) as s, s.unix_session() as http:
        await s.harness.wait_for(lambda: s.front.hub.last_id > 20)
        for asked in ("1", str(s.front.hub.last_id + 1000)):  # older than the ring; another supervisor's numbering
            async with http.get(url_for("events"), headers={"Last-Event-ID": asked}) as response:
                hello, reset, following = await read_messages(response, 3)
            assert reset["event"] == wire.STREAM_RESET and "id" not in reset
            assert json.loads(reset["data"])["asked"] == int(asked)
            assert int(following["id"]) > json.loads(hello["data"])["last_event_id"] - 8


async def test_a_client_that_never_reads_is_dropped_and_the_engine_never_waits(served: Served) -> None:
    reader, writer = await asyncio.open_unix_connection(served.unix)
    writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await served.harness.wait_for(lambda: served.front.api is not None and len(served.front.api.streams) == 1)
    api = served.api
    client = next(iter(api.streams))
    # flood: 20 MB of events, emitted synchronously; nobody reads the socket
    payload = "x" * 1000
    for number in range(20_000):
        served.supervisor.log("info", f"{number} {payload}")
        assert len(client.pending) <= stream.CLIENT_QUEUE
    assert client.overflowed
    await served.harness.wait_for(lambda: not api.streams and not api.hub.clients)
    async with served.unix_session() as http:  # the server answers as before
        status, _ = await call(http, "GET", url_for("state"))
    assert status == 200
    with contextlib.suppress(ConnectionError):  # the dropped connection ends (EOF or reset)
        while await asyncio.wait_for(reader.read(1 << 20), 20):
            pass
    writer.close()
    assert not [e for e in served.harness.events if e.level == "error"]


async def test_the_number_of_streams_is_capped(served: Served) -> None:
    async with served.unix_session() as http:
        responses = [await http.get(url_for("events")) for _ in range(MAX_STREAM_CLIENTS)]
        try:
            assert all(r.status == 200 for r in responses)
            status, body = await call(http, "GET", url_for("events"))
            assert status == 503 and body["error"]["code"] == "too_many_clients"
            status, _ = await call(http, "GET", url_for("state"))
            assert status == 200  # other routes still answer
        finally:
            for response in responses:
                response.close()
        await served.harness.wait_for(lambda: not served.api.streams)
        async with http.get(url_for("events")) as response:
            assert response.status == 200


# -- the companion ----------------------------------------------------------------------------------
async def test_a_companion_that_fails_is_logged_and_the_supervisor_goes_on(project: Project) -> None:
    project.set_issues(ISSUES[:1])
    harness = Harness(project.write(base_workflow(project)))

    @contextlib.asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise OSError("cannot bind")
        yield

    harness.supervisor.add_companion(broken)
    assert await harness.start().finish() == 0
    assert harness.named(ee.StageFinished)[0].state == RunStatus.COMPLETED
    logs = [e.message for e in harness.named(ee.Log) if e.level == "error"]
    assert logs == ["a companion service failed to start: OSError: cannot bind"]


def test_listen_refuses_a_port_in_use_and_a_remote_address_unless_asked() -> None:
    with busy_port() as port, pytest.raises(endpoint.EndpointError) as caught:
        endpoint.listen_tcp("127.0.0.1", port, allow_remote=False)
    assert str(caught.value) == f"cannot listen on 127.0.0.1:{port}: the port is already in use"
    with pytest.raises(endpoint.EndpointError, match=r"not a loopback address.*--allow-remote"):
        endpoint.listen_tcp("0.0.0.0", 0, allow_remote=False)
    with pytest.raises(endpoint.EndpointError, match="must be an IP address"):
        endpoint.listen_tcp("example.com", 0, allow_remote=False)
    endpoint.listen_tcp("0.0.0.0", 0, allow_remote=True).close()


# -- the in-process UI serves it too ----------------------------------------------------------------
async def test_the_in_process_ui_serves_the_socket_and_answers_commands(project: Project) -> None:
    """`vik-tui WORKFLOW`'s supervisor (the app's engine) serves the socket, registered the way
    `cli` registers it; a cancel through the API shows in the app."""
    from conftest import wait_on_screen
    from textual.app import App

    from vik_tui.cli.run import serve_api
    from vik_tui.ui.app import VikApp
    from vik_tui.ui.screens.confirm import ConfirmScreen

    project.set_issues(ISSUES[:1])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}
    harness = Harness(project.write(wf))
    supervisor = harness.supervisor
    serve_api(supervisor, None)
    app = VikApp(supervisor, bell=False)
    pilot_app: App[Any] = app
    async with pilot_app.run_test(size=(120, 40)) as pilot:
        await wait_on_screen(pilot, lambda: harness.named(ee.StageStarted), "the stage to start")
        await wait_on_screen(pilot, lambda: supervisor.layout.api_socket.exists(), "the socket")
        with endpoint.short_path(supervisor.layout.api_socket) as unix:
            connector = aiohttp.UnixConnector(path=unix)
            async with aiohttp.ClientSession("http://vik-tui", connector=connector) as http:
                status, body = await call(http, "POST", url_for("cancel", issue_id="A"))
                assert status == 200 and body["stages"] == ["plan"]
        await wait_on_screen(
            pilot,
            lambda: app.engine.snapshot().find_issue("A").run_of("plan").status == RunStatus.CANCELLED,
            "the cancel to show in the app",
        )
        await pilot.press("q")
        await pilot.pause(0.1)
        if isinstance(app.screen, ConfirmScreen):
            await pilot.press("y")
        await wait_on_screen(pilot, lambda: app.engine_done, "the supervisor to stop")
    assert not supervisor.layout.api_socket.exists()


def test_every_event_kind_reads_back_from_its_wire_form() -> None:
    """`wire.event_from_json` is the inverse of `to_json()` for every engine event class,
    typed payloads included (agent records, diagnostics with vik's tagged codes)."""
    from vik_tui.agents.events import AgentEvent
    from vik_tui.config.diagnostics import Diagnostic, Severity

    diagnostic = Diagnostic(Severity.ERROR, "loop.max", "non_positive_number", "must be > 0", 3, None, 0)
    samples: list[ee.EngineEvent] = [
        ee.SupervisorStarted(workflow="/w.yml", root="/r", pid=1),
        ee.ConfigRejected(errors=(diagnostic,)),
        ee.IntakeFailed(error="boom", exit_code=2, stderr="e", iteration=3),
        ee.IssueRejected(id=None, index=4, reason="no id"),
        ee.StageFinished(
            issue="A",
            stage="plan",
            attempt=2,
            state=RunStatus.FAILED,
            reason="exit 3",
            exit_code=3,
            signal=None,
            tokens={"input": 5, "output": 6},
            session_file="/s.jsonl",
        ),
        ee.AgentEvents(
            issue="A",
            stage="plan",
            attempt=1,
            session_file="/s.jsonl",
            records=(
                AgentEvent.from_record({"kind": "message", "text": "hi", "role": "assistant", "ts": "t"}),
                AgentEvent.from_record(
                    {"kind": "tool_call", "call_id": "1", "name": "shell", "input": "ls", "ts": "t"}
                ),
            ),
        ),
        ee.IssueRehosted(issue="A", from_host="h1", to_host="h2", reason="down"),
    ]
    for event in samples:
        data = json.loads(json.dumps(event.to_json()))
        back = wire.event_from_json(data)
        assert type(back) is type(event) and back.to_json() == data
    assert {type(e) for e in samples} <= set(ee.EVENT_TYPES)
    assert wire.event_from_json({"event": "from_a_newer_version", "ts": "t"}) is None
