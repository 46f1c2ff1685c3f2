"""Attention events to `notify.command` (ours): a failure at 3 a.m. should reach a person, not
only a toast nobody sees.

Only attention events, never routine completions: retries given up (a stage failed for good,
including one stopped by its token budget), an SSH host down, the daily budget spent, intake
failing `notify.intake_failures` cycles in a row (said once per streak), a drain finished.
Each runs `sh -c <notify.command>` in the workflow directory, in its own process group, with
the event's JSON (its headless form plus `summary` and `workflow`) on stdin. It is bounded:
`notify.timeout_sec`, after which the group is killed; at most `OUTPUT_LIMIT` bytes of output
are read, then it is killed too; at most `QUEUE_LIMIT` notifications wait, one runs at a time.
A failing, hanging, flooding or missing command is logged, never stops anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from vik_tui.config.schema import NotifyConfig
from vik_tui.engine import engine_events as ee
from vik_tui.engine.processes.proc import kill_group

OUTPUT_LIMIT = 4096  # bytes of a notify command's output kept (and read) for the log
QUEUE_LIMIT = 50
GRACE_SEC = 1.0

Log = Callable[[ee.Level, str], None]


class Notifier:
    """A bus listener that picks attention events (`EngineEvent.needs_attention`, the same
    choice the UI's desktop notification makes) and runs the command for each, in order."""

    def __init__(self, config: Callable[[], NotifyConfig], workflow_path: Path, log: Log) -> None:
        self.config = config  # read at each event: a reload applies
        self.workflow_path = workflow_path
        self.log = log
        self.queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(QUEUE_LIMIT)
        self.sent = 0  # commands that ran to a clean exit (for tests and benchmarks)

    def __call__(self, event: ee.EngineEvent) -> None:
        if not self.config().command or not event.needs_attention():
            return
        payload: dict[str, object] = {
            **event.to_json(),
            "summary": event.describe(),
            "workflow": str(self.workflow_path),
        }
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.log("warning", f"notify: {QUEUE_LIMIT} notifications already waiting; {event.name} not sent")

    async def run(self) -> None:
        while True:
            payload = await self.queue.get()
            try:
                await self.send(payload)
            finally:
                self.queue.task_done()

    async def send(self, payload: dict[str, object]) -> None:
        """Run the command once for `payload`; whatever happens is logged, nothing raised."""
        config = self.config()
        command = config.command
        if not command:
            return
        what = f"notify ({payload.get('event')})"
        data = (json.dumps(payload, ensure_ascii=False) + "\n").encode()
        try:
            proc = await asyncio.create_subprocess_exec(
                "sh",
                "-c",
                command,
                cwd=self.workflow_path.parent,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.log("error", f"{what}: cannot start `sh`: {exc.strerror or exc}")
            return
        try:
            output, problem = await asyncio.wait_for(_talk(proc, data), float(config.timeout_sec))
        except TimeoutError:
            output, problem = b"", f"timed out after {float(config.timeout_sec):g}s (notify.timeout_sec); killed"
        finally:
            if proc.returncode is None:
                await kill_group(proc, GRACE_SEC)
            transport = getattr(proc, "_transport", None)  # its pipes, closed now, not by the collector
            if transport is not None:
                transport.close()
        text = output.decode("utf-8", "replace").strip()[-500:]
        if problem is None and proc.returncode != 0:
            problem = f"exited with code {proc.returncode}"
        if problem is not None:
            self.log("error", f"{what} failed: {problem}" + (f": {text}" if text else ""))
        else:
            self.sent += 1


async def _talk(proc: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, str | None]:
    """Feed stdin, read at most OUTPUT_LIMIT bytes of output, wait for the exit."""
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    with contextlib.suppress(OSError):
        proc.stdin.close()
    kept = bytearray()
    while len(kept) <= OUTPUT_LIMIT:
        chunk = await proc.stdout.read(65536)
        if not chunk:
            break
        kept += chunk
    if len(kept) > OUTPUT_LIMIT:
        return bytes(kept[:OUTPUT_LIMIT]), f"printed more than {OUTPUT_LIMIT} bytes; killed"
    await proc.wait()
    return bytes(kept), None


@contextlib.asynccontextmanager
async def serve(notifier: Notifier, subscribe: Callable[[ee.Listener], Callable[[], None]]) -> AsyncIterator[None]:
    """The companion: listen for the supervisor's life; at its end, send what is queued (each
    bounded by its own timeout), then stop."""
    unsubscribe = subscribe(notifier)
    worker = asyncio.ensure_future(notifier.run())
    try:
        yield
    finally:
        unsubscribe()
        pending = notifier.queue.qsize() + 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(notifier.queue.join(), pending * (float(notifier.config().timeout_sec) + 2))
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
