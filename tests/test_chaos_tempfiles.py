"""Issue #18, item 13: the temp files of atomic writes a kill -9 interrupted (state.json, the
crash-recovery registry in `service/running/`) are removed at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from chaos_helpers import REPO, HeadlessProcess, chaos_workflow, layout_of, wait_until
from conftest import Project

# a real write_json_atomic / write_state, killed with SIGKILL once its temp file is written
WRITER = """
import os, sys, time
from pathlib import Path
from vik_tui.engine.service import daemon, state
def hold(fd):
    print("written", flush=True)
    time.sleep(600)
os.fsync = hold
target = Path(sys.argv[2])
if sys.argv[1] == "json":
    state.write_json_atomic(target, {"half": True})
else:
    daemon.write_state(target, daemon.ServiceState("w", "c", 1, 0, "127.0.0.1", "s", "l", "d", "x"))
"""


def _killed_mid_write(kind: str, target: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"written\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_temp_files_of_a_killed_atomic_write_are_removed_at_start(project: Project) -> None:
    path = project.write(chaos_workflow(project, "complete"))
    service = layout_of(path).service_dir
    _killed_mid_write("json", service / "running" / "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000.json")
    _killed_mid_write("json", service / "running" / "supervisor.json")
    _killed_mid_write("state", service / "state.json")
    left = sorted(p.name for p in service.rglob("*") if p.is_file())
    assert len(left) == 3 and all(".json." in name and "tmp" in name for name in left), left
    sup = HeadlessProcess(path)
    assert sup.wait() == 0, sup.stderr()
    wait_until(lambda: not (service / "state.json").exists(), what="state.json removed at the clean exit")
    remaining = sorted(p.name for p in service.rglob("*") if p.is_file())
    assert not [name for name in remaining if ".json." in name], remaining  # lock, api.token
