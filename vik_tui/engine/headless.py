"""Headless mode: the same engine with a plain printer subscribed instead of the app."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from vik_tui.engine.supervisor import Supervisor

QUIET_EVENTS = {"agent_events", "intake_polling", "stage_reserved"}


def format_event(event: dict[str, Any]) -> str:
    """One readable line per engine event, for people reading a terminal or a CI log."""
    name = event["event"]
    ts = event["ts"][11:19]
    where = f"{event.get('issue')}/{event.get('stage')}" if event.get("stage") else ""
    if name == "intake":
        text = f"intake: {event['issues']} issues, {event['rejected']} rejected (cycle {event['iteration']})"
    elif name == "intake_failed":
        text = f"intake failed: {event['error']}"
    elif name == "issue_rejected":
        text = f"issue rejected: {event.get('reason')}"
    elif name == "hook_finished":
        status = "ok" if event["ok"] else f"FAILED ({event.get('error') or 'exit ' + str(event.get('exit_code'))})"
        text = f"{where} hook {event['hook']}: {status}"
    elif name == "stage_started":
        text = f"{where} started (attempt {event['attempt']}, pid {event['pid']}) -> {event['session_file']}"
    elif name == "stage_finished":
        tokens = event.get("tokens") or {}
        text = (
            f"{where} {event['state'].upper()}: {event['reason']} "
            f"(exit {event.get('exit_code')}, tokens in {tokens.get('input', 0)} out {tokens.get('output', 0)})"
        )
    elif name == "retry_scheduled":
        text = f"{where} retry #{event['attempt']} in {event['delay_sec']:g}s"
    elif name == "retry_given_up":
        text = f"{where} given up after {event['attempts']} attempts: {event.get('reason')}"
    elif name == "log":
        text = event["message"]
    else:
        rest = {k: v for k, v in event.items() if k not in ("event", "ts", "level", "issue", "stage")}
        text = f"{where} {name} {json.dumps(rest, default=str)}".strip()
    level = event.get("level", "info")
    marker = {"error": "ERROR ", "warning": "WARN  "}.get(level, "")
    return f"{ts} {marker}{text}"


class Printer:
    """Writes each engine event to `out` as JSON Lines or readable text."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] in QUIET_EVENTS:
            return
        line = json.dumps(event, default=str) if self.as_json else format_event(event)
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):
            pass


async def run_headless(
    supervisor: Supervisor,
    as_json: bool,
    out: TextIO | None = None,
    extra_listener: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run to completion; SIGINT/SIGTERM stop every session cleanly first."""
    supervisor.subscribe(Printer(out or sys.stdout, as_json))
    if extra_listener is not None:
        supervisor.subscribe(extra_listener)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stop)
    try:
        return await supervisor.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
