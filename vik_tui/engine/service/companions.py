"""Companion services: what runs in the supervisor's loop for as long as it runs (the HTTP API).

The engine does not know what they are (it imports none of them): `cli` registers a factory of
an async context manager, `Supervisor.run()` enters it once the workflow lock is held and exits
it after the last event. A companion that fails, starting or stopping, is reported and left
out; it never stops the supervisor.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

Factory = Callable[[], AbstractAsyncContextManager[object]]
Report = Callable[[str], None]


class Companions:
    def __init__(self) -> None:
        self.factories: list[Factory] = []
        self._entered: list[AbstractAsyncContextManager[object]] = []

    def add(self, factory: Factory) -> None:
        self.factories.append(factory)

    async def start(self, report: Report) -> None:
        for factory in self.factories:
            try:
                companion = factory()
                await companion.__aenter__()
            except Exception as exc:
                report(f"a companion service failed to start: {type(exc).__name__}: {exc}")
            else:
                self._entered.append(companion)

    async def stop(self, report: Report) -> None:
        """Exit them in reverse order, each whatever the others did."""
        while self._entered:
            companion = self._entered.pop()
            try:
                await companion.__aexit__(None, None, None)
            except Exception as exc:
                report(f"a companion service failed to stop: {type(exc).__name__}: {exc}")
