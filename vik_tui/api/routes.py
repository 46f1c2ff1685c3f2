"""The route table of the HTTP API, shared by the server (which registers a handler per name)
and clients (which build URLs with `url_for`). Full reference with curl examples:
docs/http-api.md.

Every path is under `/api/v1`. On the Unix socket (`service/api.sock`, 0600) no token is
needed; on TCP (`--port`) every request needs `Authorization: Bearer <token>` (from
`service/api.token`). Errors are `{"error": {"code": ..., "message": ...}}`.

method path (under /api/v1)                                  body                          Engine method
GET    /state                                               wire.StateBody (Symphony)
GET    /issues/{issue_id}                                   wire.IssueBody (Symphony)     workspace_path
POST   /refresh                                             202 wire.RefreshBody          poll_now
POST   /issues/{issue_id}/cancel      [{"stage": s}]        wire.CommandBody              cancel
POST   /issues/{issue_id}/stages/{stage}/retry              wire.CommandBody              retry
POST   /intake/pause                                        wire.CommandBody              pause
POST   /intake/resume                                       wire.CommandBody              resume
POST   /stop                          {"confirm": true}     wire.CommandBody              stop
POST   /drain                                               wire.CommandBody              drain
GET    /issues/{issue_id}/explain                           view.Explanation              explain(snapshot)
GET    /events                        [Last-Event-ID]       Server-Sent Events            subscribe
GET    /view                                                wire.VIEW (EngineView)        snapshot
GET    /sessions/{issue_id}/{session_file_name}/records?offset=&limit=
                                                            wire.RecordsBody              session_records
GET    /issues/{issue_id}/diff                              wire.DiffBody                 workspace_diff
GET    /issues/{issue_id}/shell                             wire.TerminalPlan             shell_plan
GET    /issues/{issue_id}/sessions/{session_uuid}/takeover  wire.TerminalPlan             takeover_plan

`Engine.run`, `before_first_dispatch` and `load_history` stay on the client's side (the
supervisor loaded its history and runs its own loop); `workflow_path` is `/view`'s `workflow`.

The event stream: each engine event is one SSE message, `id:` a per-supervisor increasing
integer, `event:` the event's name, `data:` its headless JSON object. The first message is
`event: hello` (`wire.Hello`). `Last-Event-ID` (header, on reconnect) replays what followed
from a bounded ring; when that id is older than the ring, the first message after `hello` is
`event: stream_reset` (refetch `/view`). `/view` and `/state` carry the newest event id in the
`X-Last-Event-Id` header (and `/state` in its body), so a client can fetch the view and then
ask for exactly the events that followed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    method: str
    path: str  # aiohttp's pattern syntax: `{name}` is one path segment


ROUTES: tuple[Route, ...] = (
    Route("state", "GET", f"{PREFIX}/state"),
    Route("issue", "GET", f"{PREFIX}/issues/{{issue_id}}"),
    Route("refresh", "POST", f"{PREFIX}/refresh"),
    Route("cancel", "POST", f"{PREFIX}/issues/{{issue_id}}/cancel"),
    Route("retry", "POST", f"{PREFIX}/issues/{{issue_id}}/stages/{{stage}}/retry"),
    Route("pause", "POST", f"{PREFIX}/intake/pause"),
    Route("resume", "POST", f"{PREFIX}/intake/resume"),
    Route("stop", "POST", f"{PREFIX}/stop"),
    Route("drain", "POST", f"{PREFIX}/drain"),
    Route("explain", "GET", f"{PREFIX}/issues/{{issue_id}}/explain"),
    Route("events", "GET", f"{PREFIX}/events"),
    Route("view", "GET", f"{PREFIX}/view"),
    Route("records", "GET", f"{PREFIX}/sessions/{{issue_id}}/{{session_file_name}}/records"),
    Route("diff", "GET", f"{PREFIX}/issues/{{issue_id}}/diff"),
    Route("shell", "GET", f"{PREFIX}/issues/{{issue_id}}/shell"),
    Route("takeover", "GET", f"{PREFIX}/issues/{{issue_id}}/sessions/{{session_uuid}}/takeover"),
)
BY_NAME = {route.name: route for route in ROUTES}

LAST_EVENT_ID_HEADER = "X-Last-Event-Id"
MAX_BODY_BYTES = 64 * 1024  # a bigger request body is refused with 413
MAX_STREAM_CLIENTS = 32  # concurrent GET /events; one more gets 503
RECORDS_DEFAULT_LIMIT = 1000
RECORDS_MAX_LIMIT = 10_000


def url_for(name: str, **params: str) -> str:
    """The path of route `name` with its parameters quoted as one segment each (`/` included),
    e.g. `url_for("issue", issue_id="ENG-1")` -> `/api/v1/issues/ENG-1`."""
    path = BY_NAME[name].path
    for key, value in params.items():
        path = path.replace("{" + key + "}", quote(value, safe=""))
    return path
