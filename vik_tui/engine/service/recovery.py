"""Crash recovery: a durable registry of what runs, and the start-up sweep of what a dead
supervisor left.

A supervisor killed with SIGKILL (or by the OOM killer) runs no cleanup: its agents live on in
their own sessions, and their session files end without an outcome. So, in
`service/running/`:

- `supervisor.json` names the live supervisor (its id, pid and start time); a clean stop
  removes it, so finding one at start means the last supervisor died;
- `<session uuid>.json` names one stage attempt: its session file, the mark its processes carry
  (`descendants.Mark`), and once the agent exists its pid, process group and start time (from
  `/proc/<pid>/stat`). It is written with fsync before the supervisor reads the agent's first
  byte, and removed once the attempt's outcome is in its session file. It is written with
  room to spare (OUTCOME_ROOM bytes of blanks after the JSON): when a full disk keeps the
  outcome out of the session file, the outcome is written into the entry *in place*
  (`note_outcome`), which needs no new block, so the next start writes the reason that was
  known ("No space left on device (ENOSPC)"), not `interrupted`.

On start, before anything is dispatched, `sweep()` kills every process a dead supervisor left
(by mark, and each recorded group whose leader still has the recorded start time, so a reused
pid is never hit), appends an `interrupted` outcome to every session file that has none, and
only then lets the supervisor dispatch: a stage is never run twice at once in one workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vik_tui.engine.places.ssh import CONTROL_DIR_PREFIX
from vik_tui.engine.processes.descendants import boot_id, is_running, kill_marked, start_time
from vik_tui.engine.service.atomic import write_atomic
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.service.state import write_json_atomic
from vik_tui.engine.stages.facts import SessionFacts, write_outcome_only
from vik_tui.engine.stages.replay import outcome_of
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import SessionState

INTERRUPTED = "interrupted: supervisor exited while the stage ran"
SUPERVISOR_FILE = "supervisor.json"
OUTCOME_ROOM = 2048  # blanks kept after an entry's JSON: an outcome fits without growing the file


@dataclass
class Entry:
    """One stage attempt in the registry."""

    session_uuid: str
    session_file: str
    issue_id: str
    stage: str
    attempt: int
    mark_prefix: str  # every process of the attempt carries a mark starting with this
    started_at: str | None = None
    pid: int | None = None  # the agent, once it exists; it leads its own process group
    pgid: int | None = None
    start_time: int | None = None  # clock ticks since boot, /proc/<pid>/stat field 22
    boot_id: str | None = None
    host: str | None = None  # the SSH host it ran on: its processes there are swept by mark once the host answers
    outcome: dict[str, str] | None = None  # {state, reason} decided but kept out of the session file (full disk)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass
class RecoveryReport:
    """What the start-up sweep found and did."""

    previous_pid: int | None = None  # the supervisor that died, if it left its file
    killed: list[int] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # session files given an outcome
    unwritable: list[str] = field(default_factory=list)  # ... that could not be given one
    reasons: dict[str, str] = field(
        default_factory=dict
    )  # session file -> the outcome known before, if not INTERRUPTED
    remote: list[tuple[str, str]] = field(default_factory=list)  # (SSH host, mark prefix) left to sweep there
    seconds: float = 0.0

    @property
    def anything(self) -> bool:
        return bool(self.previous_pid or self.killed or self.interrupted or self.unwritable or self.remote)

    def describe(self) -> str:
        parts = []
        if self.previous_pid:
            parts.append(f"the previous supervisor (pid {self.previous_pid}) exited without stopping its stages")
        if self.killed:
            parts.append(f"killed {len(self.killed)} process(es) it left running")
        if self.interrupted:
            parts.append(f"marked {len(self.interrupted)} session file(s) `{INTERRUPTED}`")
        if self.unwritable:
            parts.append(f"could not write the outcome of {len(self.unwritable)} session file(s)")
        return "recovery: " + "; ".join(parts) + f" ({self.seconds:.2f}s)"


class Registry:
    """`service/running/`: what runs now, durable across a SIGKILL of the supervisor."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.directory = layout.service_dir / "running"

    # -- the live supervisor ---------------------------------------------------------------
    def supervisor_started(self, supervisor_id: str, control_dir: str | None = None) -> None:
        """`control_dir`: the SSH master sockets' directory, for the next start to remove if we die."""
        pid = os.getpid()
        record: dict[str, Any] = {"id": supervisor_id, "pid": pid, "start_time": start_time(pid), "boot_id": boot_id()}
        if control_dir:
            record["control_dir"] = control_dir
        write_json_atomic(self.directory / SUPERVISOR_FILE, record)

    def supervisor_stopped(self) -> None:
        """A clean stop: nothing is left to recover."""
        with contextlib.suppress(OSError):
            (self.directory / SUPERVISOR_FILE).unlink()

    # -- stage attempts --------------------------------------------------------------------
    def record(self, entry: Entry, *, durable: bool = True) -> None:
        """Write (or rewrite) an attempt's entry, with room for its outcome; raises OSError (a
        storage failure). `durable`: with fsync, so it survives a crash of the machine too."""
        raw = _entry_json(entry) + b" " * OUTCOME_ROOM + b"\n"
        write_atomic(self.directory / f"{entry.session_uuid}.json", raw, fsync=durable)

    def note_outcome(self, entry: Entry, state: str, reason: str) -> None:
        """The outcome could not be written to the session file (a full disk): keep it in the
        entry, overwritten in place within the room it was written with (no new block is
        needed), for the next start to write. Raises OSError."""
        path = self.directory / f"{entry.session_uuid}.json"
        fd = os.open(path, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            for cut in (len(reason), 1000, 200):
                entry.outcome = {"state": state, "reason": reason[:cut]}
                raw = _entry_json(entry)
                if len(raw) < size:
                    break
            else:
                raise OSError(f"no room for the outcome in {path}")
            os.pwrite(fd, _filling(raw, size), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def agent_started(self, entry: Entry, pid: int) -> None:
        """The agent exists: record its pid, group and start time before reading it.

        Without fsync (a session's most expensive write, ~0.5 ms of CPU and ~10 ms of the loop
        on ext4, at every start): a pid means something only while the machine is up, and a
        killed supervisor leaves the page cache, so the next start reads it all the same. After
        a crash of the machine the entry is the durable one written before, or this one; either
        way the sweep gives the session file its outcome (it reads every session file too).

        In place, as `note_outcome` writes: the pid fits in the room the entry was written with,
        and one `pwrite` of the whole file over itself (one page) is all a kill -9 can see or
        not; a temp file and a rename cost ~0.25 ms of kernel CPU (a new inode, the old one
        freed) at every start. An entry without that room is written anew."""
        entry.pid = entry.pgid = pid
        entry.start_time = start_time(pid)
        entry.boot_id = boot_id()
        raw = _entry_json(entry)
        try:
            fd = os.open(self.directory / f"{entry.session_uuid}.json", os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            self.record(entry, durable=False)
            return
        try:
            size = os.fstat(fd).st_size
            if len(raw) < size:
                data = _filling(raw, size)
                if os.pwrite(fd, data, 0) == len(data):
                    return
        finally:
            os.close(fd)
        self.record(entry, durable=False)  # no room (or a short write): a whole new entry

    def forget(self, session_uuid: str) -> None:
        with contextlib.suppress(OSError):
            (self.directory / f"{session_uuid}.json").unlink()

    def entries(self) -> list[Entry]:
        found = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            if path.name == SUPERVISOR_FILE:
                continue
            data = _read_json(path)
            try:
                found.append(Entry.from_json(data))
            except TypeError:
                path.unlink(missing_ok=True)  # unreadable: nothing to act on
        return found

    # -- start-up ---------------------------------------------------------------------------
    async def sweep(self, grace_sec: float) -> RecoveryReport:
        """Kill what a dead supervisor left, then give every outcome-less session file one."""
        began = time.monotonic()
        report = RecoveryReport()
        prefixes: list[str] = []
        previous = _read_json(self.directory / SUPERVISOR_FILE)
        if previous:
            report.previous_pid = previous.get("pid") if isinstance(previous.get("pid"), int) else None
            if isinstance(previous.get("id"), str):
                prefixes.append(f"{previous['id']}/")
            left = previous.get("control_dir")
            if isinstance(left, str) and os.path.basename(left).startswith(CONTROL_DIR_PREFIX):
                shutil.rmtree(left, ignore_errors=True)  # its masters die with the sweep below
        entries = self.entries()
        groups = [entry.pgid for entry in entries if entry.pgid and _same_process(entry)]
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        prefixes.extend(entry.mark_prefix for entry in entries if entry.mark_prefix)
        report.killed.extend(await kill_marked(prefixes, grace_sec))
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            if pgid not in report.killed:
                report.killed.append(pgid)
        for entry in entries:
            if entry.host and entry.mark_prefix:
                report.remote.append((entry.host, entry.mark_prefix))
            self._close_session(entry.session_file, report, entry.outcome)
            self.forget(entry.session_uuid)
        for path in _session_files(self.layout.sessions_dir):
            self._close_session(str(path), report)
        report.seconds = time.monotonic() - began
        return report

    def _close_session(self, session_file: str, report: RecoveryReport, known: dict[str, str] | None = None) -> None:
        """An `interrupted` outcome for a session file without one; or, when the entry kept the
        outcome decided before (a full disk kept it out), that one."""
        path = Path(session_file)
        if session_file in report.interrupted or session_file in report.unwritable or not path.is_file():
            return
        if outcome_of(path) is not None:
            return
        parsed = Layout.parse_session_name(path)
        stage, session_uuid = parsed if parsed else ("?", path.stem)
        snap = SessionFacts(path.parent.name, stage, 0, session_uuid, session_file)
        state, reason = SessionState.FAILED, INTERRUPTED
        if known is not None and known.get("reason"):
            with contextlib.suppress(ValueError):
                state, reason = SessionState(str(known.get("state"))), str(known["reason"])
        try:
            write_outcome_only(snap, state, reason)
        except OSError:
            report.unwritable.append(session_file)
        else:
            report.interrupted.append(session_file)
            if reason != INTERRUPTED:
                report.reasons[session_file] = reason


def mark_interrupted(runs: Iterable[StageRun], report: RecoveryReport) -> None:
    """Runs adopted from disk before the sweep closed their sessions: say they were interrupted."""
    closed = set(report.interrupted)
    for run in runs:
        for snap in run.sessions:
            if snap.session_file in closed:
                snap.reason = report.reasons.get(snap.session_file, INTERRUPTED)
        if run.sessions and run.sessions[-1].session_file in closed:
            run.reason = report.reasons.get(run.sessions[-1].session_file, INTERRUPTED)


def _same_process(entry: Entry) -> bool:
    """The recorded leader still runs and is the very process we started (not a reused pid)."""
    if entry.pid is None or entry.start_time is None or not is_running(entry.pid):
        return False
    if entry.boot_id and entry.boot_id != boot_id():
        return False
    return start_time(entry.pid) == entry.start_time


def _entry_json(entry: Entry) -> bytes:
    """The entry as indented JSON and a newline (orjson: the stdlib's indented encoder is
    pure Python, ~0.2 ms an entry)."""
    return orjson.dumps(asdict(entry), default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _filling(raw: bytes, size: int) -> bytes:
    """`raw` padded with spaces to `size` bytes (a newline last): an entry rewritten in place
    over one of that size (`len(raw) < size`)."""
    return raw + b" " * (size - len(raw) - 1) + b"\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _session_files(sessions_dir: Path) -> list[Path]:
    try:
        return sorted(sessions_dir.glob("*/*.jsonl"))
    except OSError:
        return []
