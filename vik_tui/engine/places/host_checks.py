"""`doctor --deep` for SSH workers: every host in `worker.ssh_hosts` is reached with the same
`ssh` the supervisor uses, and must answer, offer a writable workspace root, and have each
agent's CLI on its PATH."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.loader import LoadResult
from vik_tui.config.schema import DEFAULT_EXECUTABLES, Workflow
from vik_tui.engine.places.hosts import HostPool, remote_home
from vik_tui.engine.places.ssh import CHECK_TIMEOUT_SEC, last_line, remote_quote, run_remote


def hosts_check(result: LoadResult) -> list[Diagnostic]:
    """Findings for every SSH host of the workflow (none when it has no `worker.ssh_hosts`)."""
    workflow = result.workflow
    if workflow is None or workflow.worker is None or not workflow.worker.ssh_hosts:
        return []
    with tempfile.TemporaryDirectory(prefix="vt-doctor-") as scratch:
        pool = HostPool(workflow.worker, result.path.parent, Path(scratch) / "pins.json")
        pool.open()
        return asyncio.run(_check_all(pool, workflow, result))


async def _check_all(pool: HostPool, workflow: Workflow, result: LoadResult) -> list[Diagnostic]:
    try:
        found = await asyncio.gather(*(_check_one(pool, name, workflow, result) for name in pool.hosts))
    finally:
        await pool.stop()
    return [diag for diags in found for diag in diags]


def _programs(workflow: Workflow) -> dict[str, str]:
    """agent name -> the program its command starts (what must be on the host's PATH)."""
    programs = {}
    for name, agent in workflow.agents.items():
        if agent.runtime == "demo" or agent.command == "":
            continue
        programs[name] = agent.program[0] if agent.command else DEFAULT_EXECUTABLES.get(agent.runtime, agent.runtime)
    return programs


async def _check_one(pool: HostPool, name: str, workflow: Workflow, result: LoadResult) -> list[Diagnostic]:
    index = pool_index(workflow, name)
    pointer = f"worker.ssh_hosts.{index}"
    line = result.lines.line_of(("worker", "ssh_hosts", str(index)))
    if not await pool.check(name):
        return [Diagnostic(Severity.ERROR, pointer, "host_unreachable", f"{name}: {pool.hosts[name].error}", line)]
    host = pool.hosts[name]
    assert host.home is not None
    found: list[Diagnostic] = []
    root = remote_home(workflow, host.home)
    probe = await run_remote(
        host.target,
        f'mkdir -p -- {remote_quote(str(root))} && probe=$(mktemp -p {remote_quote(str(root))}) && rm -f -- "$probe"',
        CHECK_TIMEOUT_SEC,
    )
    if probe.returncode != 0:
        detail = last_line(probe.stderr) or f"exit {probe.returncode}"
        found.append(
            Diagnostic(
                Severity.ERROR, pointer, "host_workspace_unwritable", f"{name}: cannot write {root}: {detail}", line
            )
        )
    for agent, program in _programs(workflow).items():
        lookup = await run_remote(host.target, f"command -v {remote_quote(program)}", CHECK_TIMEOUT_SEC)
        if lookup.returncode != 0:
            found.append(
                Diagnostic(
                    Severity.WARNING,
                    f"agents.{agent}",
                    "executable_not_found_on_host",
                    f"{name}: `{program}` (agent {agent}) not found on PATH there",
                    result.lines.line_of(("agents", agent)),
                )
            )
    return found


def pool_index(workflow: Workflow, name: str) -> int:
    assert workflow.worker is not None
    return workflow.worker.ssh_hosts.index(name)
