"""Issue #18, item 10: out of memory while reading an agent's output is said as such, not blamed
on the agent. Under a real address-space limit (RLIMIT_AS, set on the running supervisor with
prlimit(2)) a 60 MiB line cannot be held; the reader's MemoryError was swallowed and the outcome
said "exited with code 0 before completing". Now the session ends naming it, the lines before it
are kept, and the supervisor runs its other session to its end.

The limit is set relative to the supervisor's measured address space once its agents wait at a
gate (its threads' arenas and stacks are then already counted): 100 MiB more holds the pieces of
the line as they arrive but not their join; 450 MiB more holds the line, but not the ~8x its
length that orjson reserves to encode it, and orjson dies by SIGSEGV where an allocation fails
(measured: the supervisor died at 200-500 MiB of room). A long record is now encoded by the
stdlib, so with that room the line is kept and the session completes.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from chaos_helpers import CHAOS_AGENT, HeadlessProcess, chaos_workflow, records, wait_until
from conftest import Project, process_running

MIB = 2**20


def _vm_size(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmSize for {pid}")


def _texts(path: Path) -> list[str]:
    return [r.get("text", "") for r in records(path) if r["kind"] == "message"]


@pytest.mark.parametrize("room_mib", [100, 450])
def test_out_of_memory_on_a_huge_line_is_said_and_the_supervisor_goes_on(
    project: Project, tmp_path: Path, room_mib: int
) -> None:
    gate, other_gate = tmp_path / "gate", tmp_path / "other-gate"
    wf = chaos_workflow(project, "long_line", mib=60, gate=str(gate))
    wf["agents"]["other"] = {**wf["agents"]["codex"], "args": {"--mode": "gated", "--gate": str(other_gate)}}
    wf["issue"]["stages"]["review"] = {"when": {"state": "todo"}, "agent": "other", "prompt": "review"}
    assert wf["agents"]["other"]["command"] == str(CHAOS_AGENT)
    sup = HeadlessProcess(project.write(wf))
    try:
        started = {sup.wait_event("stage_started", stage=s)["session_file"] for s in ("plan", "review")}
        for path in started:
            wait_until(lambda p=path: "waiting at the gate" in _texts(Path(p)), 30, f"{path} at its gate")
        limit = _vm_size(sup.proc.pid) + room_mib * MIB
        resource.prlimit(sup.proc.pid, resource.RLIMIT_AS, (limit, limit))
        gate.touch()
        finished = sup.wait_event("stage_finished", stage="plan", timeout=120)
        reason, kept = finished["reason"], _texts(Path(finished["session_file"]))
        assert "waiting at the gate" in kept  # the lines before it are in the session file
        if room_mib == 100:
            assert finished["state"] == "failed", reason
            assert reason.startswith("vik-tui ran out of memory reading the agent's output (line of 60 MiB)"), reason
        else:
            assert finished["state"] == "completed", reason
            assert "after the long line" in kept and len(max(kept, key=len)) == 60 * MIB
        assert process_running(sup.proc.pid), sup.tail()  # the supervisor lives, still under the limit
        other_gate.touch()
        other = sup.wait_event("stage_finished", stage="review", timeout=60)
        assert other["state"] == "completed", other
        assert sup.wait() == 0, sup.stderr()  # max_iterations 1: it ends by itself
    finally:
        gate.touch()
        other_gate.touch()
        sup.kill()
