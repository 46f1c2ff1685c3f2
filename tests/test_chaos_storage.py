"""Issue #9, item 1: a write error (full disk, file size limit) fails the stage, never wedges
the supervisor or corrupts a session file; new stages start once writes succeed again.

The disk cases are real: a file size limit (`RLIMIT_FSIZE`, set in the supervisor's child
process) and, where `mount` is allowed (root), a small tmpfs filled to the last byte.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_helpers import HeadlessProcess, chaos_workflow, last_outcome, records, wait_until
from conftest import Project, process_running

from vik_tui.engine.service.journal import Journal, append_lines
from vik_tui.engine.service.logs import DailyLog
from vik_tui.engine.stages.replay import outcome_of

FSIZE_LIMIT = 2 * 1024 * 1024


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def test_file_size_limit_fails_the_stage_and_keeps_whole_lines(project: Project) -> None:
    wf = chaos_workflow(project, "flood")
    sup = HeadlessProcess(project.write(wf), preexec=_limit_file_size)
    started = sup.wait_event("stage_started")
    finished = sup.wait_event("stage_finished", timeout=60)
    assert finished["state"] == "failed"
    assert "cannot write the session file: File too large (EFBIG)" in finished["reason"], finished
    assert sup.wait() == 0, sup.stderr()  # not wedged: it ran to its end
    assert not process_running(started["pid"])  # the flooding agent was stopped
    path = Path(started["session_file"])
    assert path.stat().st_size <= FSIZE_LIMIT
    assert len(records(path)) > 100  # every line whole, up to where the limit was hit
    shown = [e for e in sup.named("log") if "File too large" in e["message"]]
    assert shown and shown[0]["level"] == "error"


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    where.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        )
    except OSError:
        pytest.skip("no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory: Path) -> Path:
    filler = directory / f"filler-{uuid.uuid4().hex[:6]}"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@pytest.mark.skipif(shutil.which("mount") is None or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_fails_the_stage_and_the_retry_runs_once_space_is_back(project: Project, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        wf = chaos_workflow(project, "talk", seconds=6)
        wf["workspace"] = {"root": str(disk)}
        wf["loop"]["retry"] = {"max_attempts": 2, "backoff_sec": 2, "max_backoff_sec": 2}
        sup = HeadlessProcess(project.write(wf))
        try:
            started = sup.wait_event("stage_started")
            wait_until(lambda: sup.named("stage_started") and Path(started["session_file"]).exists(), 30)
            filler = _fill(disk)
            failed = sup.wait_event("stage_finished", timeout=60)
            assert failed["state"] == "failed"
            assert "No space left on device (ENOSPC)" in failed["reason"], failed
            assert not process_running(started["pid"])
            filler.unlink()  # room again: the retry must be able to start and record everything
            retried = sup.wait_event("stage_finished", timeout=60, attempt=2)
            assert retried["state"] == "completed", retried
            assert sup.wait() == 0, sup.stderr()
            # the failed attempt's outcome could not be written while the disk was full: it is
            # written once there is room (here: when the retry starts)
            first = last_outcome(Path(started["session_file"]))
            assert first["state"] == "failed" and "ENOSPC" in first["reason"]
            assert last_outcome(Path(retried["session_file"]))["state"] == "completed"
        finally:
            sup.kill()


def test_journal_cuts_a_failed_write_back_to_the_last_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    journal = Journal(path, buffer_size=1)
    journal.write(b'{"a":1}\n')
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
    try:
        with pytest.raises(OSError) as raised:
            journal.write(b'{"b":"' + b"x" * 200 + b'"}\n')  # the first 56 bytes would fit
        assert raised.value.errno == errno.EFBIG
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    journal.write(b'{"c":3}\n')
    journal.close()
    assert path.read_bytes() == b'{"a":1}\n{"c":3}\n'


def test_append_to_a_file_cut_mid_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a":1}\n{"half')
    append_lines(path, b'{"b":2}\n')
    assert path.read_bytes() == b'{"a":1}\n{"half\n{"b":2}\n'


def test_daily_log_drops_records_it_cannot_write_and_recovers(tmp_path: Path) -> None:
    log = DailyLog(tmp_path / "logs")
    log.write({"level": "info", "message": "first"})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    try:
        log.write({"level": "error", "message": "lost " * 100})  # no exception reaches the engine
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert log.failure is not None and log.dropped == 1
    log.write({"level": "info", "message": "again"})
    assert log.failure is None
    log.close()
    text = next((tmp_path / "logs").glob("vik.log.*")).read_text()
    assert [line for line in text.splitlines() if "lost" in line] == []
    assert "first" in text and "again" in text


@pytest.mark.skipif(shutil.which("mount") is None or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_the_enospc_reason_survives_a_crash_to_the_outcome_written_at_the_next_start(
    project: Project, tmp_path: Path
) -> None:
    """Issue #18 item 14: the disk is full, so the failed stage's outcome stays out of its session
    file; the supervisor is killed before there is room again. The next start writes the reason
    that was known (ENOSPC), not `interrupted`."""
    with small_tmpfs(tmp_path / "disk") as disk:
        wf = chaos_workflow(project, "talk", seconds=30)
        wf["workspace"] = {"root": str(disk)}
        path = project.write(wf)
        sup = HeadlessProcess(path)
        try:
            started = sup.wait_event("stage_started")
            wait_until(lambda: Path(started["session_file"]).exists(), 30)
            filler = _fill(disk)
            failed = sup.wait_event("stage_finished", timeout=60)
            assert failed["state"] == "failed" and "ENOSPC" in failed["reason"], failed
            assert outcome_of(Path(started["session_file"])) is None  # the disk kept the outcome out
            sup.kill()  # SIGKILL while the disk is still full: nothing more is written
            filler.unlink()
            project.set_issues([])  # the restart only recovers
            again = HeadlessProcess(path)
            assert again.wait() == 0, again.stderr()
        finally:
            sup.kill()
        outcome = last_outcome(Path(started["session_file"]))
        assert outcome["state"] == "failed", outcome
        assert "No space left on device (ENOSPC)" in outcome["reason"], outcome
