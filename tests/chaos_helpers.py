"""Helpers of the chaos tests (`test_chaos_*.py`): a misbehaving fake agent, a headless
supervisor in a real child process, and checks on session files. Waits are on conditions."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import FAKES, Project, base_workflow

from vik_tui.config.loader import load_workflow
from vik_tui.engine.service.paths import Layout

CHAOS_AGENT = FAKES / "chaos_agent"
REPO = Path(__file__).resolve().parents[1]
VIK = [sys.executable, "-m", "vik_tui"]


def vik(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One `vik-tui` command run to its end, its output captured as text."""
    return subprocess.run([*VIK, *args], capture_output=True, text=True, timeout=timeout, check=False)


def chaos_workflow(project: Project, mode: str, issues: int = 1, **args: Any) -> dict[str, Any]:
    """`base_workflow` with the chaos agent (`--mode mode` plus `args`) and `issues` todo issues."""
    wf = base_workflow(project)
    wf["agents"]["codex"]["command"] = str(CHAOS_AGENT)
    wf["agents"]["codex"]["args"] = {"--mode": mode, **{"--" + k.replace("_", "-"): v for k, v in args.items()}}
    project.set_issues([{"id": f"C-{i}", "title": f"chaos {i}", "state": "todo"} for i in range(1, issues + 1)])
    return wf


def layout_of(workflow_path: Path) -> Layout:
    result = load_workflow(workflow_path)
    assert result.workflow is not None
    return Layout.for_workflow(result.workflow, result.path)


def session_files(workflow_path: Path) -> list[Path]:
    return sorted(layout_of(workflow_path).sessions_dir.glob("*/*.jsonl"))


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a session file, each of which must be one whole JSON object."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in the middle of a line"
    out = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{path}:{number} is not a whole JSON record: {line[:120]!r}") from exc
    return out


def notices(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our own notices in a session file: `unknown` records whose `event_type` is ours (so a
    reader built on vik's vocabulary does not take them for the session's failure)."""
    return [r for r in found if r["kind"] == "unknown" and str(r.get("event_type", "")).startswith("vik_tui.")]


def last_outcome(path: Path) -> dict[str, Any]:
    """The outcome the final record carries (its `outcome` object; older files: the record)."""
    found = records(path)
    outcome = found[-1].get("outcome", found[-1]) if found else {}
    assert isinstance(outcome, dict) and "state" in outcome and "reason" in outcome, f"{path}: no outcome: {found[-3:]}"
    return outcome


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def read_pid(path: Path, timeout: float = 20.0) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip(), timeout, f"pid file {path}")
    return int(path.read_text().strip())


class HeadlessProcess:
    """`vik-tui run --headless --json` in a child process (its own session), events read live."""

    def __init__(self, workflow_path: Path, preexec: Callable[[], None] | None = None) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vik_tui", "run", "--headless", "--json", "--no-watch", str(workflow_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(workflow_path.parent),
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.rusage: Any = None
        self._hwm_kib = 0
        self._sampler = threading.Thread(target=self._sample_hwm, daemon=True)
        self._sampler.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self.events.append(json.loads(raw))
            except ValueError:
                continue

    def _sample_hwm(self) -> None:
        """The supervisor's own peak RSS: VmHWM of its address space, read while it lives.

        Not `ru_maxrss` from wait4: Linux keeps there the high-water mark of the address space
        the child had before exec, the forked pytest worker's, so a worker fattened by earlier
        tests raised the measured peak (issue #17 item 5). VmHWM only grows, so the last reading
        holds every peak before it."""
        path = f"/proc/{self.proc.pid}/status"
        while self.proc.returncode is None:
            try:
                with open(path, encoding="ascii") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self._hwm_kib = max(self._hwm_kib, int(line.split()[1]))
                            break
            except (OSError, ValueError):  # gone, or a zombie without an address space
                return
            time.sleep(0.02)

    def named(self, name: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name and all(e.get(k) == v for k, v in match.items())]

    def wait_event(self, name: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            if not self.named(name, **match) and self.proc.poll() is not None:
                time.sleep(0.2)  # the reader may still hold the last lines
                if not self.named(name, **match):
                    raise AssertionError(f"supervisor exited ({self.proc.returncode}) before {name}: {self.tail()}")
            return self.named(name, **match)

        result: list[dict[str, Any]] = wait_until(found, timeout, f"event {name} {match}")
        return result[0]

    def tail(self) -> str:
        return str([(e.get("event"), e.get("reason") or e.get("message") or e.get("error")) for e in self.events][-12:])

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the exit, keeping the child's resource usage (peak RSS) in `rusage`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped by a `poll()` (wait_event's exit check)
                break
            if pid:
                self.rusage = usage
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"supervisor did not exit within {timeout}s: {self.tail()}")
            time.sleep(0.05)
        self._reader.join(5)
        self._sampler.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the supervisor alone (what the OOM killer does); its agents live on."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(5)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""

    @property
    def peak_rss_mib(self) -> float:
        """The supervisor's peak RSS (see `_sample_hwm`), once it has exited."""
        assert self.rusage is not None and self._hwm_kib, "wait() first"
        return self._hwm_kib / 1024


@contextmanager
def supervising(workflow_path: Path) -> Iterator[HeadlessProcess]:
    """A `HeadlessProcess` for the block; one still running when the block is left (a failed
    assert) gets SIGTERM and is waited for, so no supervisor outlives its test."""
    supervisor = HeadlessProcess(workflow_path)
    try:
        yield supervisor
    finally:
        if supervisor.proc.poll() is None:
            supervisor.signal(signal.SIGTERM)
            supervisor.wait(30)
