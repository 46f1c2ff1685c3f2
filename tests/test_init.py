"""Issue #17 item 1: `vik-tui init` writes a starter project that works as written: doctor
--deep finds nothing, it runs headless with the fake CLIs standing in for `codex` and `claude`
(its workspace a git repository made by after_create), every flag its command line carries
exists in the real CLIs' captured `--help`, and it never overwrites a file."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from test_vik_workflows import VIK, _environment, finished, run_until_finished

from vik_tui.agents.registry import adapter_for
from vik_tui.config.loader import load_workflow
from vik_tui.engine.service.paths import Layout
from vik_tui.starter import ISSUES_FILE, PROMPT_FILE, RUNTIMES, WORKFLOW_FILE

HELP = Path(__file__).parent / "data" / "cli-help"
HELP_FILES = {"codex": "codex-0.169.0-exec-help.txt", "claude_code": "claude-2.1.197-help.txt"}
RUNTIME_NAMES = sorted(RUNTIMES)


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIK, "init", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("runtime", RUNTIME_NAMES)
def test_the_starter_passes_doctor_deep_and_runs_headless(runtime: str, tmp_path: Path) -> None:
    env = _environment(tmp_path)  # `codex` and `claude` on PATH are the fakes
    made = init("--runtime", runtime, "project", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    workflow = tmp_path / "project" / WORKFLOW_FILE
    assert f"vik-tui doctor --deep {Path('project') / WORKFLOW_FILE}" in made.stdout
    doctor = subprocess.run(
        [*VIK, "doctor", "--deep", "--strict", "--json", str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout) == {"errors": [], "warnings": []}

    events = run_until_finished(workflow, env, stages=1)
    assert finished(events) == {("FIRST-1", "work"): ("completed", "completed")}
    hooks = {e["hook"]: e for e in events if e["event"] == "hook_finished"}
    assert hooks["after_create"]["ok"] and hooks["after_run"]["ok"], hooks
    loaded = load_workflow(workflow).workflow
    assert loaded is not None
    workspace = Layout.for_workflow(loaded, workflow).issue_workdir("FIRST-1")
    log = subprocess.run(["git", "log", "--format=%s"], cwd=workspace, capture_output=True, text=True, check=True)
    assert "workspace for FIRST-1" in log.stdout  # a git repository, as Codex requires


def _flags_of(runtime: str, tmp_path: Path) -> list[tuple[str, str | None]]:
    """Every flag (and the value after it) of the command line vik-tui builds from the starter."""
    directory = tmp_path / runtime
    assert init("--runtime", runtime, str(directory), cwd=tmp_path).returncode == 0
    result = load_workflow(directory / WORKFLOW_FILE)
    assert result.workflow is not None, result.diagnostics
    (agent,) = result.workflow.agents.values()
    argv = adapter_for(agent.runtime).build_command(agent)[1:]
    return [(token, argv[i + 1] if i + 1 < len(argv) else None) for i, token in enumerate(argv) if token[0] == "-"]


@pytest.mark.parametrize("runtime", RUNTIME_NAMES)
def test_every_flag_exists_in_the_real_cli(runtime: str, tmp_path: Path) -> None:
    text = (HELP / HELP_FILES[runtime]).read_text(encoding="utf-8")
    flags = _flags_of(runtime, tmp_path)
    assert flags, "the command line carries flags"
    for flag, value in flags:
        where = re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=<]|$)", text, re.MULTILINE)
        assert where is not None, f"{flag} is not in {HELP_FILES[runtime]}"
        if flag in RUNTIMES[runtime].args:  # a value among the choices the help lists
            assert value is not None and value in text[where.end() : where.end() + 600], (flag, value)


def test_the_check_would_catch_codex_dropping_full_auto() -> None:
    text = (HELP / HELP_FILES["codex"]).read_text(encoding="utf-8")
    assert re.search(r"(^|[\s,])--full-auto([\s,=<]|$)", text, re.MULTILINE) is None
    assert "--skip-git-repo-check" in text


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / ISSUES_FILE).write_text("[my own issues]")
    refused = init(cwd=tmp_path)
    assert refused.returncode == 1
    assert "already exists; nothing was written" in refused.stderr and "Traceback" not in refused.stderr
    assert (tmp_path / ISSUES_FILE).read_text() == "[my own issues]"
    assert not (tmp_path / WORKFLOW_FILE).exists() and not (tmp_path / PROMPT_FILE).exists()


def test_init_into_an_unwritable_place_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    refused = init(str(tmp_path / "file" / "below"), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("vik-tui init: cannot write in"), refused.stderr
