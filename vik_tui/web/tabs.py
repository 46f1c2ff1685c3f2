"""One `vik-tui attach WORKFLOW` process per browser tab, and how many may run at once.

textual-serve's `AppService` speaks the Textual web driver's protocol with the app process;
`TabProcess` keeps that and changes what it leaves open: the process is started without a shell
(`exec`, so the pid is the app's), in its own process group, without the server's tmux
variables (a tab is no tmux client), and `stop()` does not wait forever on an app that does not
quit: quit, then SIGTERM to its group, then SIGKILL. The app is an attached UI, so its end is a
detach: the supervisor and its agents go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Sequence

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

QUIT_GRACE_SEC = 5.0  # a detaching UI ends in well under a second; a wedged one is not waited on
TERM_GRACE_SEC = 2.0
DROPPED_ENV = ("TMUX", "TMUX_PANE")  # the app would open `s` and `a` in the server's tmux


class TabsFull(Exception):
    """Every tab the server allows is open."""


class TabProcess(AppService):
    """textual-serve's app service for one tab, over an argv instead of a shell line."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> None:
        super().__init__(
            shlex.join(argv),
            write_bytes=write_bytes,
            write_str=write_str,
            close=close,
            download_manager=download_manager,
        )
        self.argv = list(argv)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        environment = self._build_environment(width=width, height=height)
        for name in DROPPED_ENV:
            environment.pop(name, None)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,  # its own group: ended whole, and no signal of the server's terminal
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        """Relay the app until its output ends; then close the tab's websocket, whatever ended
        it (textual-serve leaves the page open on an app that died before saying goodbye)."""
        try:
            await super().run()
        finally:
            with contextlib.suppress(Exception):
                await self.remote_close()

    async def stop(self) -> None:
        """Ask the app to quit (it detaches), then end its process group if it does not."""
        task, process = self._task, self._process
        if task is None or process is None:
            return
        self._task = None
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process.returncode is None:
            await self.send_meta({"type": "quit"})
            if not await _exited(process, QUIT_GRACE_SEC):
                _signal_group(process, signal.SIGTERM)
                if not await _exited(process, TERM_GRACE_SEC):
                    _signal_group(process, signal.SIGKILL)
                    await process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, TERM_GRACE_SEC)  # the reader ends at the pipe's end


async def _exited(process: Process, within: float) -> bool:
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        return False
    return True


def _signal_group(process: Process, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class Tabs:
    """The open tabs' processes, at most `cap` at once (each is a Python process with the app)."""

    def __init__(self, argv: Sequence[str], cap: int) -> None:
        self.argv = list(argv)
        self.cap = cap
        self.open: set[TabProcess] = set()

    @property
    def full(self) -> bool:
        return len(self.open) >= self.cap

    def claim(
        self,
        *,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> TabProcess:
        """A tab's process, counted from now (before any await: two tabs cannot both take the
        last place); `release` when the tab closes."""
        if self.full:
            raise TabsFull(f"{self.cap} tabs are open, the most this server runs (--max-tabs)")
        tab = TabProcess(
            self.argv, write_bytes=write_bytes, write_str=write_str, close=close, download_manager=download_manager
        )
        self.open.add(tab)
        return tab

    async def release(self, tab: TabProcess) -> None:
        try:
            await tab.stop()
        finally:
            self.open.discard(tab)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.release(tab) for tab in list(self.open)), return_exceptions=True)
