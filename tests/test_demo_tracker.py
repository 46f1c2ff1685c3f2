"""The demo tracker as the pull command and the agents use it: real subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vik_tui.demo.tracker import TrackerError, load_issues, move_issue, write_issues

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """The subprocess environment, with this checkout importable even when not installed."""
    env = {k: v for k, v in os.environ.items() if k != "VIK_DEMO_TRACKER"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _tracker(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vik_tui.demo.tracker", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def tracker_file(tmp_path: Path) -> Path:
    path = tmp_path / "tracker.json"
    path.write_text(
        json.dumps(
            [
                {"id": "T-1", "title": "First", "state": "todo", "description": "one", "labels": ["bug"]},
                {"id": "T-2", "title": "Second", "state": "todo"},
            ]
        )
    )
    return path


def test_list_prints_normalised_issues(tracker_file: Path) -> None:
    result = _tracker(tracker_file.parent, "--file", str(tracker_file), "list")
    assert result.returncode == 0, result.stderr
    issues = json.loads(result.stdout)
    assert issues == [
        {"id": "T-1", "title": "First", "state": "todo", "description": "one", "labels": ["bug"]},
        {"id": "T-2", "title": "Second", "state": "todo", "description": "", "labels": []},
    ]


def test_default_file_is_env_then_cwd(tracker_file: Path, tmp_path: Path) -> None:
    from_cwd = _tracker(tmp_path, "list")
    assert from_cwd.returncode == 0, from_cwd.stderr
    assert [i["id"] for i in json.loads(from_cwd.stdout)] == ["T-1", "T-2"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _tracker(elsewhere, "list").returncode == 1
    from_env = _tracker(elsewhere, "list", VIK_DEMO_TRACKER=str(tracker_file))
    assert from_env.returncode == 0, from_env.stderr
    assert len(json.loads(from_env.stdout)) == 2


def test_move_rewrites_file_atomically(tracker_file: Path) -> None:
    tracker_file.chmod(0o640)
    result = _tracker(tracker_file.parent, "--file", str(tracker_file), "move", "T-2", "work")
    assert result.returncode == 0, result.stderr
    assert "T-2 -> work" in result.stdout
    states = {i["id"]: i["state"] for i in load_issues(tracker_file)}
    assert states == {"T-1": "todo", "T-2": "work"}
    assert stat.S_IMODE(tracker_file.stat().st_mode) == 0o640
    leftovers = [p.name for p in tracker_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_move_unknown_id_fails_and_leaves_file(tracker_file: Path) -> None:
    before = tracker_file.read_bytes()
    result = _tracker(tracker_file.parent, "--file", str(tracker_file), "move", "NOPE-9", "done")
    assert result.returncode == 1
    assert "NOPE-9" in result.stderr
    assert result.stdout == ""
    assert tracker_file.read_bytes() == before


def test_missing_or_malformed_file_fails_cleanly(tmp_path: Path) -> None:
    missing = _tracker(tmp_path, "--file", str(tmp_path / "none.json"), "list")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    malformed = _tracker(tmp_path, "--file", str(bad), "move", "X", "done")
    assert malformed.returncode == 1
    assert "Traceback" not in malformed.stderr


def test_concurrent_moves_lose_no_update(tmp_path: Path) -> None:
    """Many movers and readers at once: every move lands and every read is a whole file."""
    path = tmp_path / "tracker.json"
    count = 24
    write_issues(path, [{"id": f"C-{n}", "title": f"Issue {n}", "state": "todo"} for n in range(count)])
    cmd = [sys.executable, "-m", "vik_tui.demo.tracker", "--file", str(path)]
    env = _env()
    movers = [
        subprocess.Popen(
            [*cmd, "move", f"C-{n}", "done"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for n in range(count)
    ]
    readers = [
        subprocess.Popen([*cmd, "list"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    for proc in movers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    for proc in readers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(json.loads(out)) == count
    assert all(issue["state"] == "done" for issue in load_issues(path))


def test_python_api(tracker_file: Path) -> None:
    moved = move_issue(tracker_file, "T-1", "review")
    assert moved["state"] == "review"
    assert [i["state"] for i in load_issues(tracker_file)] == ["review", "todo"]
    with pytest.raises(KeyError):
        move_issue(tracker_file, "T-404", "done")
    with pytest.raises(TrackerError):
        load_issues(tracker_file.parent / "absent.json")
