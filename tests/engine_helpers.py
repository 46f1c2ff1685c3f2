"""Run a real Supervisor in-process and wait on conditions (never on fixed sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vik_tui.config.loader import load_workflow
from vik_tui.engine.engine_events import EngineEvent
from vik_tui.engine.supervisor import Supervisor

E = TypeVar("E", bound=EngineEvent)


class Harness:
    def __init__(self, workflow_path: Path, watch: bool = False) -> None:
        result = load_workflow(workflow_path)
        assert result.ok, [d.render() for d in result.diagnostics]
        self.supervisor = Supervisor(result.workflow, result.path, watch=watch)
        self.events: list[EngineEvent] = []
        self.supervisor.subscribe(self.events.append)
        self.task: asyncio.Task[int] | None = None

    def start(self) -> Harness:
        self.task = asyncio.ensure_future(self.supervisor.run())
        return self

    def named(self, kind: type[E], **match: Any) -> list[E]:
        """The events of one class so far, optionally only those whose fields equal `match`."""
        return [
            e for e in self.events if isinstance(e, kind) and all(getattr(e, k, None) == v for k, v in match.items())
        ]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self.task is not None and self.task.done():
                self.task.result()
            if loop.time() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout}s; events: {[e.name for e in self.events][-30:]}"
                )
            await asyncio.sleep(0.02)

    async def wait_event(self, kind: type[E], timeout: float = 20.0, **match: Any) -> E:
        found: list[E] = await self.wait_for(lambda: self.named(kind, **match), timeout)
        return found[0]

    async def finish(self, timeout: float = 30.0) -> int:
        assert self.task is not None
        return await asyncio.wait_for(self.task, timeout)

    async def stop(self) -> int:
        self.supervisor.stop()
        return await self.finish()
