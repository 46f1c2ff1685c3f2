"""Pytest plugin: the run fails when a process started by the tests outlives them.

Each pytest process (the plain one, or the xdist controller and every worker) puts a marker
in its environment at configure time, so every process the tests start inherits it, even one
that left its process group (`setsid`, a tmux server). At session end the process scans
`/proc/*/environ` for its marker, SIGKILLs what it finds (whole process groups), names each
leftover with the test that was running when it started, and sets a failing exit status.

Workers hand their findings to the controller, which also sweeps for anything carrying the
run's prefix (a crashed worker never sweeps). A process whose environment was built from
scratch (`env={...}` without os.environ) carries no marker and is not seen, unless whatever
builds it copies `marker_env()` in (the test sshd does, with `SetEnv`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

RUN_VAR = "VIK_TUI_TEST_RUN"  # <run uuid>-<xdist worker id, or main>
TEST_VAR = "VIK_TUI_TEST_NODE"  # the test running when a process started
OUTPUT_KEY = "vik_tui_leftovers"
KILL_WAIT_SEC = 5.0
_MARKER = pytest.StashKey[str]()


@dataclass(frozen=True)
class Leftover:
    pid: int
    cmdline: str
    test: str


_FOUND = pytest.StashKey[list[Leftover]]()


def marker_env() -> dict[str, str]:
    """The guard's variables as this process has them now, for a process that builds its
    environment from scratch (an sshd session) to pass on, so the guard still finds it."""
    return {name: os.environ[name] for name in (RUN_VAR, TEST_VAR) if name in os.environ}


def _read_environ(pid: int) -> dict[bytes, bytes]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, a zombie's is empty, or not ours to read
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip() or "?"


def _ancestors() -> set[int]:
    """This process and every process above it: never killed, never their groups."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            pid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def find_marked(marker: str, *, prefix: bool = False, skip_exact: str | None = None) -> list[Leftover]:
    """Live processes whose environment carries `marker` (or a value starting with it)."""
    mine = _ancestors()
    found = []
    want = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        env = _read_environ(int(entry))
        value = env.get(RUN_VAR.encode())
        if value is None or (skip_exact is not None and value == skip_exact.encode()):
            continue
        if value == want or (prefix and value.startswith(want)):
            test = env.get(TEST_VAR.encode(), b"(outside any test)").decode("utf-8", "replace")
            found.append(Leftover(int(entry), _cmdline(int(entry)), test))
    return found


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] in (b"Z", b"X")


def kill_all(leftovers: list[Leftover]) -> None:
    """SIGKILL each leftover's process group (the process alone when the group is ours)."""
    protected_groups = set()
    for pid in _ancestors():
        with contextlib.suppress(OSError):
            protected_groups.add(os.getpgid(pid))
    for item in leftovers:
        with contextlib.suppress(OSError):
            group = os.getpgid(item.pid)
            if group in protected_groups:
                os.kill(item.pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_SEC
    pending = [item.pid for item in leftovers]
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if not _gone(pid)]
        if pending:
            time.sleep(0.02)  # polling for a condition, bounded by the deadline


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    """The xdist controller (known only after xdist's own configure, so ask late)."""
    return config.pluginmanager.hasplugin("dsession")


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        # same run as the controller that started us (its marker is in our inherited environment)
        run = os.environ.get(RUN_VAR, uuid.uuid4().hex).rsplit("-", 1)[0]
        marker = f"{run}-{config.workerinput['workerid']}"  # type: ignore[attr-defined]
    else:  # a plain run or the xdist controller; a pytest started by a test is a new run
        marker = f"{uuid.uuid4().hex}-main"
    os.environ[RUN_VAR] = marker
    config.stash[_MARKER] = marker
    config.stash[_FOUND] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    """Processes started during setup, call or teardown of `item` carry its node id."""
    os.environ[TEST_VAR] = item.nodeid
    try:
        yield
    finally:
        os.environ.pop(TEST_VAR, None)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown without xdist
def pytest_testnodedown(node: Any, error: object) -> None:
    """Controller: collect what a worker found and killed."""
    found = getattr(node, "workeroutput", {}).get(OUTPUT_KEY, [])
    node.config.stash[_FOUND].extend(Leftover(**item) for item in found)


@pytest.hookimpl(trylast=True)  # the controller sweeps after xdist has shut its workers down
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    marker = config.stash[_MARKER]
    if _is_controller(config):
        run = marker.rsplit("-", 1)[0]
        # any worker's leftovers (a crashed worker never swept); workers themselves carry our own marker
        leftovers = find_marked(f"{run}-", prefix=True, skip_exact=marker)
    else:
        leftovers = find_marked(marker)
    kill_all(leftovers)
    if _is_worker(config):
        config.workeroutput[OUTPUT_KEY] = [asdict(item) for item in leftovers]  # type: ignore[attr-defined]
        return
    config.stash[_FOUND].extend(leftovers)
    if config.stash[_FOUND] and session.exitstatus == pytest.ExitCode.OK:  # keep a worse status as it is
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = config.stash.get(_FOUND, [])
    if not found or _is_worker(config):
        return
    terminalreporter.section("processes left behind", sep="=", red=True, bold=True)
    for item in found:
        terminalreporter.line(f"pid {item.pid} started by {item.test}: {item.cmdline}", red=True)
    terminalreporter.line(
        f"FAILED: {len(found)} process(es) outlived the tests (killed now); every test must stop what it starts",
        red=True,
        bold=True,
    )
