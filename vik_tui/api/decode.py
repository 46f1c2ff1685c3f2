"""The client's reading of the wire: engine events from their headless JSON, the EngineView,
session records. Typed by pydantic TypeAdapters over the engine's own dataclasses, so the
client gets back exactly the objects the in-process UI gets."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from vik_tui.agents.events import AgentEvent
from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.engine import engine_events as ee
from vik_tui.engine.view import EngineView

EVENTS: dict[str, type[ee.EngineEvent]] = {cls.name: cls for cls in ee.EVENT_TYPES}


class WireError(ValueError):
    """A body or event the client cannot read (a supervisor of another version, a proxy's page)."""


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def decode_view(body: bytes) -> EngineView:
    try:
        view: EngineView = _adapter(EngineView).validate_json(body)
    except ValidationError as exc:
        raise WireError(f"the supervisor's view cannot be read: {exc.error_count()} problem(s)") from None
    return view


def decode_records(items: Any) -> list[AgentEvent]:
    """Session records (vik's JSONL objects) back into agent events; never raises."""
    if not isinstance(items, list):
        return []
    return [AgentEvent.from_record(item) for item in items if isinstance(item, dict)]


def _diagnostic(item: Any) -> Diagnostic:
    data = item if isinstance(item, dict) else {}
    code = data.get("code", "")
    payload = None
    if isinstance(code, dict) and code:  # vik's externally tagged codes: {"non_positive_number": 0}
        code, payload = next(iter(code.items()))
    return Diagnostic(
        severity=Severity(data.get("severity", "error")),
        pointer=str(data.get("pointer", "")),
        code=str(code),
        message=str(data.get("message", "")),
        line=data.get("line"),
        column=data.get("column"),
        payload=payload,
    )


def decode_event(name: str, data: str | bytes) -> ee.EngineEvent | None:
    """One event of the stream; None for a kind this client does not know (a newer supervisor)."""
    cls = EVENTS.get(name)
    if cls is None:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise WireError(f"event {name}: not JSON") from None
    if not isinstance(obj, dict):
        raise WireError(f"event {name}: not a JSON object")
    obj.pop("event", None)
    try:
        if cls is ee.AgentEvents:
            records = decode_records(obj.pop("records", []))
            base: ee.AgentEvents = _adapter(cls).validate_python({**obj, "records": []})
            return ee.AgentEvents(
                ts=base.ts,
                level=base.level,
                issue=base.issue,
                stage=base.stage,
                attempt=base.attempt,
                session_file=base.session_file,
                records=records,
            )
        if cls is ee.ConfigRejected:
            errors = tuple(_diagnostic(item) for item in obj.pop("errors", []) or [])
            return ee.ConfigRejected(ts=str(obj.get("ts", "")), errors=errors)
        event: ee.EngineEvent = _adapter(cls).validate_python(obj)
    except (ValidationError, ValueError, TypeError) as exc:
        raise WireError(f"event {name} cannot be read: {exc}") from None
    return event
