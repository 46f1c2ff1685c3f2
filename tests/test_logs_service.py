"""Daily log files with retention; state.json written atomically; one supervisor per workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vik_tui.engine.service.logs import RETENTION_DAYS, DailyLog, prune
from vik_tui.engine.service.state import AlreadyRunning, WorkflowLock, write_json_atomic


def utc_today() -> date:
    return datetime.now(UTC).date()


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- daily logs ---------------------------------------------------------------------------------


def test_info_and_above_go_to_the_daily_log_errors_also_to_the_error_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = DailyLog(logs)
    try:
        log.write({"level": "debug", "event": "noise"})
        log.write({"level": "info", "event": "intake", "issues": 3})
        log.write({"level": "warning", "event": "slow"})
        log.write({"level": "error", "event": "stage_failed", "reason": "exit 3"})
        log.write({"event": "no level means info"})
        log.write({"level": "ERROR", "event": "upper-case level"})
        log.write({"level": "critical", "event": "worse"})
    finally:
        log.close()
    day = utc_today().isoformat()
    main, errors = logs / f"vik.log.{day}", logs / f"vik-error.log.{day}"
    assert sorted(p.name for p in logs.iterdir()) == sorted([main.name, errors.name])
    assert [r["event"] for r in read_lines(main)] == [
        "intake",
        "slow",
        "stage_failed",
        "no level means info",
        "upper-case level",
        "worse",
    ]
    assert read_lines(main)[0] == {"level": "info", "event": "intake", "issues": 3}
    assert [r["event"] for r in read_lines(errors)] == ["stage_failed", "upper-case level", "worse"]


def test_no_error_file_without_errors(tmp_path: Path) -> None:
    log = DailyLog(tmp_path / "logs")
    log.write({"level": "info", "event": "x"})
    log.close()
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [f"vik.log.{utc_today()}"]


def test_records_are_json_lines_even_with_odd_values(tmp_path: Path) -> None:
    log = DailyLog(tmp_path)
    log.write({"level": "info", "path": tmp_path, "when": datetime(2024, 1, 2), "text": "line\nbreak ☃"})
    log.close()
    (record,) = read_lines(tmp_path / f"vik.log.{utc_today()}")
    assert record == {"level": "info", "path": str(tmp_path), "when": "2024-01-02 00:00:00", "text": "line\nbreak ☃"}


def test_appends_across_instances(tmp_path: Path) -> None:
    for n in range(3):
        log = DailyLog(tmp_path)
        log.write({"level": "info", "n": n})
        log.close()
    assert [r["n"] for r in read_lines(tmp_path / f"vik.log.{utc_today()}")] == [0, 1, 2]


def _dated(directory: Path, today: date, ages: list[int]) -> dict[int, list[Path]]:
    made: dict[int, list[Path]] = {}
    for age in ages:
        day = (today - timedelta(days=age)).isoformat()
        made[age] = [directory / f"vik.log.{day}", directory / f"vik-error.log.{day}"]
        for path in made[age]:
            path.write_text('{"old": true}\n')
    return made


def test_prune_keeps_seven_days(tmp_path: Path) -> None:
    today = date(2025, 3, 10)
    made = _dated(tmp_path, today, [0, 1, 2, 3, 4, 5, 6, 7, 8, 30, 400])
    others = [
        tmp_path / "vik.log",
        tmp_path / "notes.txt",
        tmp_path / "vik.log.2025-13-45",
        tmp_path / "vik.log.yesterday",
        tmp_path / "other.log.2020-01-01",
    ]
    for path in others:
        path.write_text("keep me")
    removed = prune(tmp_path, today)
    assert RETENTION_DAYS == 7
    assert sorted(removed) == sorted(made[7] + made[8] + made[30] + made[400])
    for age in (0, 1, 6):
        assert all(p.exists() for p in made[age])
    assert all(p.exists() for p in others)


def test_prune_keeps_future_dated_files(tmp_path: Path) -> None:
    today = date(2025, 3, 10)
    future = tmp_path / "vik.log.2025-03-11"
    future.write_text("x")
    assert prune(tmp_path, today) == [] and future.exists()


def test_opening_the_daily_log_prunes_old_files(tmp_path: Path) -> None:
    today = utc_today()
    made = _dated(tmp_path, today, [1, 2, 3, 4, 5, 6, 9])  # with today's, the newest 7 are kept
    log = DailyLog(tmp_path)
    log.write({"level": "error", "event": "start"})
    log.close()
    assert all(p.exists() for p in made[3])
    assert not made[9][0].exists()  # vik.log: today's and the newest 6 others are kept


def test_custom_retention(tmp_path: Path) -> None:
    today = date(2025, 3, 10)
    made = _dated(tmp_path, today, [0, 1, 2])
    prune(tmp_path, today, retention_days=2)
    assert all(p.exists() for p in made[0] + made[1]) and not any(p.exists() for p in made[2])


# -- state.json ---------------------------------------------------------------------------------


def test_write_json_atomic_creates_dirs_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "service" / "state.json"
    write_json_atomic(target, {"running": [{"issue": "ENG-1", "stage": "plan"}], "path": tmp_path})
    write_json_atomic(target, {"running": [], "n": 2})
    assert json.loads(target.read_text()) == {"running": [], "n": 2}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"good": True})
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        write_json_atomic(target, circular)
    assert json.loads(target.read_text()) == {"good": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_concurrent_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    stop = tmp_path / "stop"
    big = {"issues": [{"id": f"ENG-{n}", "title": "t" * 200, "n": n} for n in range(300)]}
    write_json_atomic(target, {**big, "version": -1})
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import json, pathlib
        target, stop = pathlib.Path({str(target)!r}), pathlib.Path({str(stop)!r})
        reads = bad = 0
        print("ready", flush=True)
        while not stop.exists():
            try:
                data = json.loads(target.read_text())
                assert len(data["issues"]) == 300
            except Exception as exc:
                bad += 1
            reads += 1
        print(reads, bad)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"  # the reader runs before we start writing
        for version in range(300):
            write_json_atomic(target, {**big, "version": version})
    finally:
        stop.write_text("1")
        out, _ = reader.communicate(timeout=30)
    reads, bad = map(int, out.split())
    assert reads > 0 and bad == 0
    assert json.loads(target.read_text())["version"] == 299


# -- the workflow lock --------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from vik_tui.engine.service.state import WorkflowLock
    lock = WorkflowLock(Path(sys.argv[1]))
    lock.acquire({"pid": __import__("os").getpid(), "started_at": "2025-01-01T00:00:00Z", "cwd": "/somewhere"})
    print("locked", flush=True)
    sys.stdin.read()  # hold until the parent closes our stdin
    lock.release()
""")

TRY = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from vik_tui.engine.service.state import AlreadyRunning, WorkflowLock
    try:
        WorkflowLock(Path(sys.argv[1])).acquire({"pid": os.getpid(), "started_at": "now", "cwd": os.getcwd()})
    except AlreadyRunning as exc:
        print(exc)
        sys.exit(3)
    print("acquired")
""")


def test_second_process_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    lock_path = tmp_path / "service" / "lock"
    lock = WorkflowLock(lock_path)
    lock.acquire({"pid": os.getpid(), "started_at": "2025-05-05T10:00:00Z", "cwd": str(tmp_path)})
    try:
        other = subprocess.run([sys.executable, "-c", TRY, str(lock_path)], capture_output=True, text=True, timeout=30)
        assert other.returncode == 3, other.stderr
        message = other.stdout.strip()
        assert f"pid {os.getpid()}" in message
        assert "started 2025-05-05T10:00:00Z" in message and str(tmp_path) in message and str(lock_path) in message
    finally:
        lock.release()
    again = subprocess.run([sys.executable, "-c", TRY, str(lock_path)], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and again.stdout.strip() == "acquired"


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        mine = WorkflowLock(lock_path)
        with pytest.raises(AlreadyRunning) as info:
            mine.acquire({"pid": os.getpid()})
        assert f"pid {holder.pid}" in str(info.value) and "/somewhere" in str(info.value)
        assert json.loads(lock_path.read_text())["pid"] == holder.pid  # our failed attempt changed nothing
        holder.kill()  # no release: the kernel frees the lock with the process
        holder.wait(timeout=30)
        mine.acquire({"pid": os.getpid(), "started_at": "later"})
        assert json.loads(lock_path.read_text()) == {"pid": os.getpid(), "started_at": "later"}
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


def test_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    """Agents we spawn must not keep the workflow locked after we exit."""
    lock_path = tmp_path / "lock"
    lock = WorkflowLock(lock_path)
    lock.acquire({"pid": os.getpid()})
    try:
        fds = subprocess.run(
            ["sh", "-c", "ls /proc/self/fd"], capture_output=True, text=True, timeout=10, close_fds=False
        )
        assert lock._fd is not None and str(lock._fd) not in fds.stdout.split()
    finally:
        lock.release()


def test_acquire_twice_in_one_object_and_release_twice(tmp_path: Path) -> None:
    lock = WorkflowLock(tmp_path / "lock")
    lock.acquire({"pid": 1})
    lock.acquire({"pid": 1})  # already ours: no error, no leaked descriptor
    lock.release()
    lock.release()
    other = subprocess.run(
        [sys.executable, "-c", TRY, str(tmp_path / "lock")], capture_output=True, text=True, timeout=30
    )
    assert other.returncode == 0


def test_unreadable_holder_info_still_gives_a_message(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        lock_path.write_text("garbage, not json")
        with pytest.raises(AlreadyRunning, match=r"another vik-tui supervises this workflow \(pid \?"):
            WorkflowLock(lock_path).acquire({"pid": os.getpid()})
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_clock_step_forward_and_back_deletes_no_daily_log(tmp_path: Path) -> None:
    """Issue #18, item 9: the wall clock +30 days, then back: the logs written so far stay."""
    day = [date(2026, 3, 1)]
    log = DailyLog(tmp_path, today=lambda: day[0])
    written = []
    for offset in range(7):  # a week of daily logs
        day[0] = date(2026, 3, 1) + timedelta(days=offset)
        log.write({"level": "error", "event": "x"})
        written.append(tmp_path / f"vik.log.{day[0]}")
    day[0] = date(2026, 3, 7) + timedelta(days=30)  # the clock jumps a month ahead...
    log.write({"level": "error", "event": "after the step"})
    assert all(p.exists() for p in written[1:])  # at least the newest 7 stay, whatever the clock says
    day[0] = date(2026, 3, 8)  # ...and back
    log.write({"level": "info", "event": "after the step back"})
    log.close()
    assert all(p.exists() for p in written[1:]) and (tmp_path / "vik.log.2026-03-08").exists()
    assert (tmp_path / "vik.log.2026-04-06").exists()  # the future-dated one is not deleted either


def test_the_log_being_written_is_never_deleted(tmp_path: Path) -> None:
    today = date(2026, 3, 10)
    newer = _dated(tmp_path, today + timedelta(days=400), list(range(7)))  # seven files dated far ahead
    log = DailyLog(tmp_path, today=lambda: today)
    log.write({"level": "error", "event": "now"})
    log.write({"level": "error", "event": "again"})
    log.close()
    assert len((tmp_path / f"vik.log.{today}").read_text().splitlines()) == 2
    assert all(p.exists() for paths in newer.values() for p in paths)


def test_prune_under_a_clock_a_month_ahead_keeps_the_newest_seven(tmp_path: Path) -> None:
    today = date(2026, 3, 7)
    made = _dated(tmp_path, today, list(range(9)))
    removed = prune(tmp_path, today + timedelta(days=30))
    assert sorted(removed) == sorted(made[7] + made[8])  # was: every file
    assert all(p.exists() for age in range(7) for p in made[age])
