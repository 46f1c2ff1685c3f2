"""Keeping the SSH worker hosts in step with the engine: their health said once per change
(a recovered host takes work again), the unhealthy ones checked again every
`worker.health_check_sec`, what a killed supervisor left on them swept, and where the next stage
of an issue goes. The pool (`hosts.HostPool`) knows the hosts; this tells the engine about them.

It never sees a run: the caller passes the load, and is called back when a host recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from vik_tui.engine import engine_events as ee
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.places.local import Place


class HostCoordination:
    """One per supervisor with SSH workers."""

    def __init__(
        self,
        pool: HostPool,
        emit: Callable[[ee.EngineEvent], None],
        log: Callable[[ee.Level, str], None],
        on_recovered: Callable[[], None],
    ) -> None:
        self.pool = pool
        self._emit = emit
        self._log = log
        self._on_recovered = on_recovered  # a host answers again: dispatch what waited for room
        self._health_told: dict[str, bool] = {}  # the health last reported for each host

    async def start(
        self,
        left: Sequence[tuple[str, str]],
        place: Callable[[str], Place],
        grace: Callable[[], float],
        stopping: Callable[[], bool],
    ) -> asyncio.Future[None]:
        """Before the first dispatch: every host checked, what a killed supervisor left swept
        (`recover`); returns the task that re-checks the unhealthy ones (`watch`)."""
        self.pool.open()
        await self.check_all(list(self.pool.hosts))
        await self.recover(left, place, grace())
        return asyncio.ensure_future(self.watch(stopping))

    async def check_all(self, names: Sequence[str]) -> None:
        await asyncio.gather(*(self.check(name) for name in names))

    async def check(self, name: str) -> bool:
        """Check one host and say so when its health changed; a recovered host takes work again.
        Also the places' drop handler: after an `ssh` exited 255 it tells a dropped connection
        (False) from a command's own exit status 255 (True: the host answers)."""
        host = self.pool.hosts[name]
        ok = await self.pool.check(name)
        told = self._health_told.get(name)  # checks run concurrently: say each change once
        if ok and told is not True:
            self._health_told[name] = True
            self._emit(ee.HostHealthy(host=name, recovered=told is False))
            self._on_recovered()
        elif not ok and told is not False:
            self._health_told[name] = False
            self._emit(ee.HostUnhealthy(host=name, error=host.error or "unreachable"))
        return ok

    def error(self, name: str) -> str | None:
        return self.pool.hosts[name].error

    async def watch(self, stopping: Callable[[], bool]) -> None:
        """Check the unhealthy hosts again every `worker.health_check_sec` until one answers."""
        while not stopping():
            await asyncio.sleep(self.pool.health_check_sec)
            down = [h.name for h in self.pool.hosts.values() if h.healthy is not True]
            if down:
                await self.check_all(down)

    async def recover(self, left: Sequence[tuple[str, str]], place: Callable[[str], Place], grace: float) -> None:
        """A supervisor killed with SIGKILL left agents on its SSH hosts (killing the local `ssh`
        ends nothing there): sweep each host by the dead attempts' marks (`left`: host, prefix)."""
        for name in sorted({host for host, _prefix in left}):
            prefixes = [prefix for host, prefix in left if host == name]
            host = self.pool.hosts.get(name)
            if host is None or not host.healthy:
                why = "no longer in worker.ssh_hosts" if host is None else "unreachable"
                self._log(
                    "warning", f"recovery: {name} is {why}; processes of {len(prefixes)} stage(s) may remain there"
                )
                continue
            where = place(name)
            killed = [pid for prefix in prefixes for pid in await where.sweep(prefix, grace)]
            if killed:
                self._log("warning", f"recovery: killed {len(killed)} process(es) left running on {name}")

    def host_for(self, issue_id: str, load: dict[str, int]) -> str | None:
        """The host for the issue's next stage (None: every usable host is full, or none
        answers: wait), pinned, and counted in `load`; a move to another host is told."""
        placement = self.pool.place(issue_id, load)
        if placement.host is None:
            return None
        if placement.moved_from is not None:
            previous = self.pool.hosts[placement.moved_from]
            reason = f"{placement.moved_from} unreachable" + (f" ({previous.error})" if previous.error else "")
            self._emit(
                ee.IssueRehosted(issue=issue_id, from_host=placement.moved_from, to_host=placement.host, reason=reason)
            )
        self.pool.pin(issue_id, placement.host)
        load[placement.host] = load.get(placement.host, 0) + 1
        return placement.host
