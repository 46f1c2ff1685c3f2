"""The SSH worker pool: which hosts exist, which are healthy, where each issue lives.

An issue is pinned to one host for its lifetime (its workspace is there), and the pins are kept
in a file so a restart sends it back. A new issue goes to the least-loaded healthy host with
room; when every host is full the stage waits (never a silent fallback to this machine). A host
whose check fails leaves the pool until a later check passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vik_tui.config.schema import WorkerConfig, Workflow
from vik_tui.engine.places.ssh import CHECK_TIMEOUT_SEC, CONTROL_DIR_PREFIX, SshTarget, last_line, run_remote
from vik_tui.engine.processes.proc import run_shell
from vik_tui.engine.service.atomic import write_atomic
from vik_tui.engine.service.paths import encode_workflow_path, expand_tilde
from vik_tui.engine.view import HostView


@dataclass
class Host:
    """One worker host as the pool knows it."""

    name: str
    target: SshTarget
    healthy: bool | None = None  # None: not checked yet
    error: str | None = None
    home: str | None = None  # $HOME there, learned by the first check that passed

    def view(self, running: int, cap: int | None, pinned: int) -> HostView:
        return HostView(self.name, running, cap, self.healthy, self.error, pinned)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a stage of an issue goes now: `host` (None: wait), and the host it leaves, if any."""

    host: str | None
    moved_from: str | None = None


def remote_home(workflow: Workflow, host_home: str) -> PurePosixPath:
    """The workspace home on a host: `workspace.root` is read there (Symphony's rule): absolute
    as written, `~`-relative or relative from the host's $HOME; no root: `~/.vik` there."""
    home = PurePosixPath(host_home)
    root = workflow.workspace.root if workflow.workspace is not None else None
    if not root:
        return home / ".vik"
    if root == "~" or root.startswith("~/"):
        return home / root[2:] if root != "~" else home
    path = PurePosixPath(root)
    return path if path.is_absolute() else home / path


class HostPool:
    """Owned by the Supervisor; it asks `place()` before each stage and `check()` after a drop."""

    def __init__(self, worker: WorkerConfig, workflow_dir: Path, pins_file: Path) -> None:
        self.cap = worker.max_concurrent_agents_per_host
        self.health_check_sec = float(worker.health_check_sec)
        config = expand_tilde(worker.ssh_config) if worker.ssh_config else None
        if config is not None and not os.path.isabs(config):
            config = str(workflow_dir / config)
        # ssh's unix sockets must fit in 108 bytes: a short private directory, not the workspace;
        # made by `open()`, removed by `stop()`
        base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        self.control_dir = os.path.join(base, f"{CONTROL_DIR_PREFIX}{secrets.token_hex(4)}")
        self.hosts = {
            name: Host(name, SshTarget(name, config, self.control_dir, str(workflow_dir))) for name in worker.ssh_hosts
        }
        self.pins_file = pins_file
        self.pins: dict[str, str] = self._load_pins()
        self._checks: dict[str, asyncio.Future[bool]] = {}

    # -- placement -------------------------------------------------------------------------
    def place(self, issue_id: str, load: dict[str, int]) -> Placement:
        """The host for the issue's next stage, given the stages running on each host now."""
        pinned = self.pins.get(issue_id)
        host = self.hosts.get(pinned) if pinned else None
        if host is not None and host.healthy is not False:
            return Placement(pinned if host.healthy and self._has_room(pinned or "", load) else None)
        best = self._least_loaded(load)
        if best is None:
            return Placement(None)
        return Placement(best, moved_from=pinned)  # new issue, or its host is down: a visible move

    def pin(self, issue_id: str, host: str) -> None:
        if self.pins.get(issue_id) != host:
            self.pins[issue_id] = host
            self._save_pins()

    def host_of(self, issue_id: str) -> str | None:
        return self.pins.get(issue_id)

    def _has_room(self, name: str, load: dict[str, int]) -> bool:
        return self.cap is None or load.get(name, 0) < self.cap

    def _least_loaded(self, load: dict[str, int]) -> str | None:
        ready = [h.name for h in self.hosts.values() if h.healthy and self._has_room(h.name, load)]
        if not ready:
            return None
        pinned_count = self.pinned_counts()
        # fewest running now, then fewest issues living there, then the order of the config
        return min(ready, key=lambda name: (load.get(name, 0), pinned_count.get(name, 0)))

    def pinned_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.pins.values():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def views(self, load: dict[str, int]) -> tuple[HostView, ...]:
        pinned = self.pinned_counts()
        return tuple(h.view(load.get(h.name, 0), self.cap, pinned.get(h.name, 0)) for h in self.hosts.values())

    def open(self) -> None:
        """Make the directory for the master connections' sockets (private: 0700)."""
        os.makedirs(self.control_dir, mode=0o700, exist_ok=True)

    # -- health ----------------------------------------------------------------------------
    async def check(self, name: str) -> bool:
        """Reach the host (starting its master connection) and learn its $HOME; one check at a
        time per host, so a burst of failures costs one round trip."""
        running = self._checks.get(name)
        if running is None or running.done():
            running = self._checks[name] = asyncio.ensure_future(self._check(self.hosts[name]))
        return await asyncio.shield(running)

    async def _check(self, host: Host) -> bool:
        target = host.target
        master = await run_shell(shlex.join(target.master_command()), Path(target.local_dir), CHECK_TIMEOUT_SEC)
        if master.returncode != 0:  # no connection at all (a second try would only wait as long again)
            host.healthy = False
            host.error = last_line(master.stderr) or f"ssh exited with code {master.returncode}"
            if master.timed_out:
                host.error = f"no answer within {CHECK_TIMEOUT_SEC:g}s"
            return False
        probe = await run_remote(target, 'printf "%s\\n" "$HOME"', CHECK_TIMEOUT_SEC)
        if probe.returncode == 0 and probe.stdout.strip():
            host.healthy, host.error = True, None
            host.home = probe.stdout.decode("utf-8", "replace").strip().splitlines()[-1]
            return True
        detail = last_line(probe.stderr)
        if probe.timed_out:
            detail = f"no answer within {CHECK_TIMEOUT_SEC:g}s"
        host.healthy = False
        host.error = detail or f"ssh exited with code {probe.returncode}"
        return False

    async def stop(self) -> None:
        """Close every master connection and remove the socket directory."""
        closing = [
            run_shell(shlex.join(h.target.control_command("exit")), Path(h.target.local_dir), 5.0)
            for h in self.hosts.values()
        ]
        await asyncio.gather(*closing, return_exceptions=True)
        shutil.rmtree(self.control_dir, ignore_errors=True)

    # -- pins on disk ----------------------------------------------------------------------
    def _load_pins(self) -> dict[str, str]:
        try:
            data = json.loads(self.pins_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, str) and v in self.hosts}

    def _save_pins(self) -> None:
        """Atomically; a failure only costs the pins after a restart, so it is not fatal."""
        with contextlib.suppress(OSError):
            text = json.dumps(self.pins, indent=1, sort_keys=True)
            write_atomic(self.pins_file, text, temp_name=self.pins_file.with_suffix(".tmp").name)


def remote_issues_dir(workflow: Workflow, workflow_path: Path, host_home: str) -> PurePosixPath:
    """`<home there>/workflows/<encoded workflow path>/issues`: vik's layout, on the host."""
    return remote_home(workflow, host_home) / "workflows" / encode_workflow_path(workflow_path) / "issues"
