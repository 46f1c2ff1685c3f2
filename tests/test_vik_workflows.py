"""Workflows shaped like vik's own (tests/vik_shaped/README.md): doctor gives vik's verdicts, and
each runs headless with the fake agents standing in for `codex` and `claude` on PATH."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_CLAUDE, FAKE_CODEX

SHAPED = Path(__file__).parent / "vik_shaped"
VIK = [sys.executable, "-m", "vik_tui"]


def doctor(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIK, "doctor", *extra, str(path)], capture_output=True, text=True, timeout=60)


# -- doctor: vik's verdicts ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["own/workflow.yml", "own/examples/full.yml", "fixtures/valid/workflow.yml"])
def test_valid_workflows_are_clean(name: str) -> None:
    out = doctor(SHAPED / name, "--strict", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == {"errors": [], "warnings": []}  # as vik prints for its valid fixture


def test_warning_fixture_exits_zero_with_warnings() -> None:
    out = doctor(SHAPED / "fixtures/warning.yml", "--json")
    assert out.returncode == 0, out.stdout
    data = json.loads(out.stdout)
    assert data["errors"] == []
    # vik's one warning, and ours about the prompt file vik does not look for (a warning, so the verdict stands)
    assert [(w["pointer"], w["code"]) for w in data["warnings"]] == [
        ("loop.poll_jitter_ms", "unknown_field"),
        ("issue.stages.plan.prompt_file", "prompt_file_missing"),
    ]
    assert doctor(SHAPED / "fixtures/warning.yml", "--strict").returncode == 1  # as vik with --strict


def test_error_fixture_exits_one() -> None:
    out = doctor(SHAPED / "fixtures/error.yml")
    assert out.returncode == 1
    assert "[missing_field] agents" in out.stdout and "loop" not in out.stdout.replace(str(SHAPED), "")


# -- running them -------------------------------------------------------------------------------


def _environment(tmp_path: Path) -> dict[str, str]:
    """`codex` and `claude` on PATH are the fakes; HOME is a scratch directory (full.yml uses ~/.vik)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "codex").symlink_to(FAKE_CODEX)
    (bin_dir / "claude").symlink_to(FAKE_CLAUDE)
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)}


def run_until_finished(workflow: Path, env: dict[str, str], stages: int) -> list[dict[str, Any]]:
    """`vik-tui run --json` until `stages` stages have finished, then SIGTERM; the events seen."""
    proc = subprocess.Popen(
        [*VIK, "run", "--json", "--no-watch", str(workflow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=workflow.parent,
    )
    events: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))
            if sum(e["event"] == "stage_finished" for e in events) >= stages:
                proc.send_signal(signal.SIGTERM)
                break
        events += [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return events


def finished(events: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {(e["issue"], e["stage"]): (e["state"], e["reason"]) for e in events if e["event"] == "stage_finished"}


def test_vik_shaped_workflow_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SHAPED / "own", project)
    issues = [
        {"id": "11", "title": "Plan the cache", "state": "Scoping"},
        {"id": "12", "title": "Plan it again", "state": "Needs changes"},
        {"id": "13", "title": "Build the cache", "state": "In Progress", "description": "Make reads fast."},
        {"id": "14", "title": "Land the cache", "state": "Landing", "url": "https://example.invalid/14"},
        {"id": "15", "title": "Not ours", "state": "Done"},
    ]
    (project / "issues.json").write_text(json.dumps(issues))
    events = run_until_finished(project / "workflow.yml", _environment(tmp_path), stages=4)
    assert finished(events) == {
        ("11", "scope"): ("completed", "completed"),
        ("12", "revise"): ("completed", "completed"),
        ("13", "implement"): ("completed", "completed"),
        ("14", "land"): ("completed", "completed"),
    }
    hooks = [e for e in events if e["event"] == "hook_finished"]
    assert {(e["issue"], e["hook"], e["ok"]) for e in hooks} == {
        (i, "after_create", True) for i in ["11", "12", "13", "14"]
    }
    # `workspace: {root: .vik}` beside the workflow; after_create ran in each issue's directory
    root = project / ".vik" / "workflows" / str(project / "workflow.yml").replace("/", "-")
    assert all((root / "issues" / i / ".git").is_dir() for i in ("11", "12", "13", "14"))


def test_full_example_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SHAPED / "own", project)
    issues = [
        {"id": "1", "title": "Plan", "state": "todo", "labels": ["todo"]},
        {"id": "2", "title": "Build", "state": "work", "labels": ["work", "backend"]},
        {"id": "3", "title": "Review", "state": "review", "labels": ["review"]},
    ]
    (project / "issues.json").write_text(json.dumps(issues))
    env = _environment(tmp_path)
    events = run_until_finished(project / "examples" / "full.yml", env, stages=3)
    assert finished(events) == {
        ("1", "plan"): ("completed", "completed"),
        ("2", "implement"): ("completed", "completed"),
        ("3", "review"): ("completed", "completed"),
    }
    hooks = {(e["issue"], e["hook"]) for e in events if e["event"] == "hook_finished" and e["ok"]}
    assert {("2", "before_run"), ("2", "after_run"), ("3", "before_run"), ("3", "after_run")} <= hooks
    assert (Path(env["HOME"]) / ".vik" / "workflows").is_dir()  # `root: ~/.vik`


@pytest.mark.parametrize("fixture", ["valid/workflow.yml", "warning.yml"])
def test_fixtures_run(tmp_path: Path, fixture: str) -> None:
    """The valid fixture completes its stage; the warning one runs and its stage fails on the
    missing prompt file, as under vik (which does not check it before running)."""
    project = tmp_path / "fixtures"
    shutil.copytree(SHAPED / "fixtures", project)
    workflow = project / fixture
    scripts = workflow.parent / "scripts"
    scripts.mkdir()
    (scripts / "issues-json").write_text('#!/bin/sh\necho \'[{"id": "7", "title": "t", "state": "plan"}]\'\n')
    (scripts / "issues-json").chmod(0o755)
    env = _environment(tmp_path)
    events = run_until_finished(workflow, env, stages=1)
    state, reason = finished(events)[("7", "plan")]
    if fixture == "warning.yml":
        assert state == "failed" and reason is not None and "cannot read prompt file" in reason
    else:
        assert (state, reason) == ("completed", "completed")


def test_error_fixture_does_not_run(tmp_path: Path) -> None:
    out = subprocess.run(
        [*VIK, "run", str(SHAPED / "fixtures" / "error.yml")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "required section `agents` is missing" in out.stderr
