"""write_demo_project: a workflow the real loader accepts, and restarts that keep progress."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from vik_tui.config import load_workflow
from vik_tui.demo.project import DEMO_FINAL_STATE, demo_all_done, write_demo_project
from vik_tui.demo.tracker import load_issues, move_issue

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_workflow_loads_without_errors(tmp_path: Path) -> None:
    workflow_path = write_demo_project(tmp_path / "demo", speed=2.5)
    assert workflow_path == (tmp_path / "demo" / "workflow.yml").resolve()
    result = load_workflow(workflow_path)
    assert result.errors == []
    assert result.ok
    workflow = result.workflow
    assert workflow is not None
    assert workflow.workspace is None  # data lands in <dir>/.vik
    assert workflow.loop.max_issue_concurrency == 3
    assert workflow.loop.max_iterations is None
    assert workflow.loop.retry.max_attempts == 3
    agent = workflow.agents["demo"]
    assert agent.runtime == "demo"
    assert agent.args == {"--speed": 2.5, "--tracker": str((tmp_path / "demo" / "tracker.json").resolve())}
    assert list(workflow.issue.stages) == ["plan", "implement", "review"]
    assert [s.when.state for s in workflow.issue.stages.values()] == ["todo", "work", "review"]
    assert all(s.agent == "demo" and s.prompt_file for s in workflow.issue.stages.values())
    assert workflow.issues.pull.idle_sec == 1


def test_pull_command_runs_from_workflow_dir(tmp_path: Path) -> None:
    directory = tmp_path / "demo dir"  # a space must not break the command
    result = load_workflow(write_demo_project(directory))
    assert result.workflow is not None
    env = dict(os.environ)
    env.pop("VIK_DEMO_TRACKER", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    pulled = subprocess.run(
        result.workflow.issues.pull.command,
        shell=True,
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pulled.returncode == 0, pulled.stderr
    issues = json.loads(pulled.stdout)
    assert [i["id"] for i in issues] == [f"DEMO-{n}" for n in range(1, 7)]
    assert all(i["state"] == "todo" and i["title"] and i["description"] for i in issues)
    assert sum("flaky" in i["labels"] for i in issues) == 1


def test_rewrite_keeps_tracker_progress(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    workflow_path = write_demo_project(directory, speed=1.0)
    move_issue(directory / "tracker.json", "DEMO-2", "review")
    (directory / "prompts" / "plan.md").write_text("broken {{")
    assert write_demo_project(directory, speed=4.0) == workflow_path
    states = {i["id"]: i["state"] for i in load_issues(directory / "tracker.json")}
    assert states["DEMO-2"] == "review"
    assert "ISSUE_ID: {{ issue.id }}" in (directory / "prompts" / "plan.md").read_text()
    result = load_workflow(workflow_path)
    assert result.errors == []
    assert result.workflow is not None and result.workflow.agents["demo"].args["--speed"] == 4.0


def test_demo_all_done(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    assert not demo_all_done(directory)  # no tracker yet
    write_demo_project(directory)
    assert not demo_all_done(directory)
    for issue in load_issues(directory / "tracker.json"):
        move_issue(directory / "tracker.json", issue["id"], DEMO_FINAL_STATE)
    assert demo_all_done(directory)


def test_rejects_non_positive_speed(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_demo_project(tmp_path / "demo", speed=0)
