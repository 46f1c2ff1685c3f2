"""The simulated agent, run as the supervisor runs it: a subprocess fed a rendered prompt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from vik_tui.demo.agent import FAILURE_MESSAGE, parse_prompt
from vik_tui.demo.project import demo_all_done, write_demo_project
from vik_tui.demo.tracker import load_issues, move_issue
from vik_tui.engine.stages.templates import render

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEED = "50"


def _env() -> dict[str, str]:
    """The subprocess environment, with this checkout importable even when not installed."""
    env = {k: v for k, v in os.environ.items() if k != "VIK_DEMO_TRACKER"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    write_demo_project(directory)
    return directory


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "workspace"
    directory.mkdir()
    return directory


def _issue(project: Path, issue_id: str) -> dict[str, Any]:
    return next(i for i in load_issues(project / "tracker.json") if i["id"] == issue_id)


def _prompt(project: Path, stage: str, issue_id: str) -> str:
    """Render a demo prompt file with the engine's own renderer (minijinja, strict undefined)."""
    source = (project / "prompts" / f"{stage}.md").read_text()
    return render(source, {"issue": _issue(project, issue_id)}, f"demo prompt {stage}")


def _agent_cmd(project: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vik_tui.demo.agent",
        "--speed",
        SPEED,
        "--tracker",
        str(project / "tracker.json"),
        *extra,
    ]


def _run(project: Path, workspace: Path, prompt: str, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    result = subprocess.run(
        _agent_cmd(project, *extra),
        input=prompt,
        cwd=workspace,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line must be JSON
    return result.returncode, events, result.stderr


def _items(events: list[dict[str, Any]], kind: str, phase: str = "item.completed") -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == phase and e["item"]["type"] == kind]


def test_prompts_carry_machine_lines(project: Path) -> None:
    for stage, state in (("plan", "work"), ("implement", "review"), ("review", "done")):
        info = parse_prompt(_prompt(project, stage, "DEMO-2"))
        assert (info.issue_id, info.next_state) == ("DEMO-2", state)


def test_successful_run_is_codex_shaped_and_moves_issue(project: Path, workspace: Path) -> None:
    code, events, stderr = _run(project, workspace, _prompt(project, "plan", "DEMO-1"))
    assert code == 0, stderr
    assert events[0]["type"] == "thread.started"
    uuid.UUID(events[0]["thread_id"])
    assert events[1]["type"] == "turn.started"
    assert events[-1]["type"] == "turn.completed"
    usage = events[-1]["usage"]
    for key in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"):
        assert isinstance(usage[key], int) and usage[key] >= 0
    assert usage["cached_input_tokens"] <= usage["input_tokens"]

    assert _items(events, "reasoning")[0]["text"]
    assert len(_items(events, "agent_message")) >= 2
    started = _items(events, "command_execution", "item.started")
    finished = _items(events, "command_execution")
    assert 2 <= len(finished) <= 3
    assert [i["id"] for i in started] == [i["id"] for i in finished]
    assert all(i["exit_code"] == 0 and i["status"] == "completed" for i in finished)
    ls_output = next(i for i in finished if i["command"] == "ls -la")["aggregated_output"]
    assert "total" in ls_output  # real output of a real command
    changes = _items(events, "file_change")[0]["changes"]
    assert changes == [{"path": str(workspace / "NOTES.md"), "kind": "add"}]

    assert "DEMO-1" in (workspace / "NOTES.md").read_text()
    assert _issue(project, "DEMO-1")["state"] == "work"


def test_full_pipeline_reaches_done(project: Path, workspace: Path) -> None:
    subprocess.run(["git", "init", "-q", "."], cwd=workspace, check=False, capture_output=True)
    for stage, state in (("plan", "work"), ("implement", "review"), ("review", "done")):
        code, events, stderr = _run(project, workspace, _prompt(project, stage, "DEMO-5"))
        assert code == 0, stderr
        assert events[-1]["type"] == "turn.completed"
        assert _issue(project, "DEMO-5")["state"] == state
    assert (workspace / "NOTES.md").read_text().count("DEMO-5") == 3
    assert not demo_all_done(project)
    for issue in load_issues(project / "tracker.json"):
        move_issue(project / "tracker.json", issue["id"], "done")
    assert demo_all_done(project)


def test_flaky_issue_fails_once_then_succeeds(project: Path, workspace: Path) -> None:
    flaky = next(i["id"] for i in load_issues(project / "tracker.json") if "flaky" in i["labels"])
    prompt = _prompt(project, "plan", flaky)

    code, events, stderr = _run(project, workspace, prompt)
    assert code == 1
    assert events[0]["type"] == "thread.started"
    assert events[-1] == {"type": "turn.failed", "error": {"message": FAILURE_MESSAGE}}
    assert FAILURE_MESSAGE in stderr
    assert _issue(project, flaky)["state"] == "todo"
    assert (project / f".failed-once-{flaky}-work").exists()

    code, events, stderr = _run(project, workspace, prompt)
    assert code == 0, stderr
    assert events[-1]["type"] == "turn.completed"
    assert _issue(project, flaky)["state"] == "work"

    # The marker is per next state: the implement stage fails once too.
    code, events, _ = _run(project, workspace, _prompt(project, "implement", flaky))
    assert code == 1 and events[-1]["type"] == "turn.failed"
    assert _issue(project, flaky)["state"] == "work"


def test_fail_once_marker_dir(project: Path, workspace: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    flaky = next(i["id"] for i in load_issues(project / "tracker.json") if "flaky" in i["labels"])
    code, _, _ = _run(project, workspace, _prompt(project, "plan", flaky), "--fail-once-marker", str(markers))
    assert code == 1
    assert (markers / f".failed-once-{flaky}-work").exists()
    assert not (project / f".failed-once-{flaky}-work").exists()


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        ("no machine lines here\n", "ISSUE_ID"),
        ("ISSUE_ID: DEMO-1\n", "NEXT_STATE"),
        ("ISSUE_ID: DEMO-99\nNEXT_STATE: work\n", "DEMO-99"),
    ],
)
def test_bad_prompt_fails_visibly(project: Path, workspace: Path, prompt: str, needle: str) -> None:
    code, events, stderr = _run(project, workspace, prompt)
    assert code != 0
    assert events[-1]["type"] == "turn.failed"
    assert needle in events[-1]["error"]["message"]
    assert needle in stderr
    assert all(i["state"] == "todo" for i in load_issues(project / "tracker.json"))


def test_closed_stdout_exits_quietly(project: Path, workspace: Path) -> None:
    proc = subprocess.Popen(
        _agent_cmd(project),
        cwd=workspace,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(_prompt(project, "plan", "DEMO-1").encode())
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["type"] == "thread.started"
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_sigterm_stops_promptly(project: Path, workspace: Path) -> None:
    cmd = [sys.executable, "-m", "vik_tui.demo.agent", "--speed", "0.5", "--tracker", str(project / "tracker.json")]
    proc = subprocess.Popen(
        cmd, cwd=workspace, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(_prompt(project, "plan", "DEMO-1").encode())
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["type"] == "thread.started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # a ceiling: a loaded machine is slow
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert _issue(project, "DEMO-1")["state"] == "todo"
