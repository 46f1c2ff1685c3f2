"""Headless mode: the same engine with a plain printer subscribed instead of the app."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from vik_tui.engine.engine_events import EngineEvent, Listener
from vik_tui.engine.service.stop_signals import install_stop_signals
from vik_tui.engine.service.terminal import printable
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.wakeups import batch_wakeups

LEVEL_MARKERS = {"error": "ERROR ", "warning": "WARN  "}


def format_event(event: EngineEvent) -> str:
    """One readable line per engine event, for people reading a terminal or a CI log; text from
    outside (agents, tracker, hooks) is printed as text, its control codes as escapes."""
    return printable(f"{event.ts[11:19]} {LEVEL_MARKERS.get(event.level, '')}{event.describe()}")


class Printer:
    """Writes each engine event to `out` as JSON Lines (the wire form) or readable text."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def __call__(self, event: EngineEvent) -> None:
        if event.quiet:
            return
        line = json.dumps(event.to_json(), default=str) if self.as_json else format_event(event)
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (OSError, ValueError):  # a closed pipe, a full disk: the engine goes on
            pass


async def run_headless(
    supervisor: Supervisor,
    as_json: bool,
    out: TextIO | None = None,
    extra_listener: Listener | None = None,
) -> int:
    """Run to completion; SIGINT, SIGTERM and SIGHUP (a closed terminal) stop every session
    cleanly first. No screen waits on the loop, so its wake-ups are batched (`wakeups`)."""
    supervisor.subscribe(Printer(out or sys.stdout, as_json))
    if extra_listener is not None:
        supervisor.subscribe(extra_listener)
    loop = asyncio.get_running_loop()
    remove_handlers = install_stop_signals(loop, supervisor.stop)
    unbatch = batch_wakeups(loop)
    try:
        return await supervisor.run()
    finally:
        unbatch()
        remove_handlers()
