"""`vik-tui doctor`: most cases call the CLI's `main` in-process with captured output (fast);
a few run the installed console script and `python -m vik_tui` as real subprocesses, for the
text and JSON forms and the exit codes as a shell sees them."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAKE_CODEX, Project, base_workflow

from vik_tui.cli import main as cli_main

VIK_TUI = Path(sys.executable).parent / "vik-tui"


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def doctor(*args: str, cwd: Path | None = None) -> Ran:
    """`vik-tui doctor ARGS` in this process: what a subprocess would print and return."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = cli_main(["doctor", *args])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return Ran(code, out.getvalue(), err.getvalue())


def doctor_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script as a real process."""
    return subprocess.run([str(VIK_TUI), "doctor", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def doctor_json(*args: str, cwd: Path | None = None) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    ran = doctor("--json", *args, cwd=cwd)
    return ran.returncode, json.loads(ran.stdout)


def cli_json(*args: str, cwd: Path | None = None) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    proc = doctor_cli("--json", *args, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_console_script_exists() -> None:
    assert VIK_TUI.is_file(), "the package must be installed (editable) into the venv"


def test_clean_workflow_exits_zero(project: Project) -> None:
    project.write(base_workflow(project))
    proc = doctor_cli(str(project.workflow_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{project.workflow_path}: ok"
    code, data = cli_json(str(project.workflow_path))
    assert (code, data) == (0, {"errors": [], "warnings": []})


def test_default_path_is_workflow_yml_in_cwd(project: Project, tmp_path: Path) -> None:
    project.write(base_workflow(project))
    assert doctor_cli(cwd=project.root).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = doctor_cli(cwd=empty)
    assert proc.returncode == 2
    assert f"workflow file not found: {empty / 'workflow.yml'}" in proc.stdout


def test_python_dash_m_entry_point(project: Project) -> None:
    project.write(base_workflow(project))
    proc = subprocess.run(
        [sys.executable, "-m", "vik_tui", "doctor", str(project.workflow_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


BROKEN = """\
agents:
  codex:
    runtime: codex
    model: gpt-5.5
    command: {fake}
    colour: blue
issues:
  pull:
    command: cat issues.json
    idle_sec: 0
issue:
  stages:
    plan:
      when:
        state: todo
      agent: claude
      prompt: hi
"""


def test_errors_and_warnings_in_text_form(project: Project) -> None:
    project.write(BROKEN.format(fake=FAKE_CODEX))
    proc = doctor_cli(str(project.workflow_path))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    name = str(project.workflow_path)
    assert f"{name}:6: warning [unknown_field] agents.codex.colour: unknown field `colour` is ignored" in lines
    assert f"{name}:10: error [non_positive_number] issues.pull.idle_sec: must be greater than 0 (got 0)" in lines
    assert (
        f"{name}:16: error [unknown_agent] issue.stages.plan.agent: agent `claude` is not defined in `agents`" in lines
    )
    assert lines[-1] == f"{name}: 2 error(s), 1 warning(s)"


def test_json_form_has_every_field(project: Project) -> None:
    project.write(BROKEN.format(fake=FAKE_CODEX))
    code, data = doctor_json(str(project.workflow_path))
    assert code == 1
    assert set(data) == {"errors", "warnings"}
    for item in data["errors"] + data["warnings"]:
        assert set(item) == {"severity", "pointer", "code", "message", "line"}
    assert data["warnings"] == [
        {
            "severity": "warning",
            "pointer": "agents.codex.colour",
            "code": "unknown_field",
            "message": "unknown field `colour` is ignored",
            "line": 6,
        }
    ]
    # vik's codes, the two that carry a value tagged as vik writes them
    assert [(e["pointer"], e["code"], e["line"]) for e in data["errors"]] == [
        ("issues.pull.idle_sec", {"non_positive_number": 0}, 10),
        ("issue.stages.plan.agent", {"unknown_agent": "claude"}, 16),
    ]
    assert all(e["severity"] == "error" for e in data["errors"])


def test_warnings_fail_only_with_strict(project: Project) -> None:
    wf = base_workflow(project)
    wf["agents"]["codex"]["command"] = "no-such-agent-binary-xyz"
    project.write(wf)
    code, data = doctor_json(str(project.workflow_path))
    assert code == 0 and data == {"errors": [], "warnings": []}  # PATH is only looked at with --deep
    code, data = doctor_json("--deep", str(project.workflow_path))
    assert code == 0 and data["errors"] == []
    assert [(w["code"], w["pointer"]) for w in data["warnings"]] == [("executable_not_found", "agents.codex.command")]
    assert doctor("--strict", "--deep", str(project.workflow_path)).returncode == 1
    # --strict does not change the exit code of a clean file
    project.write(base_workflow(project))
    assert doctor("--strict", str(project.workflow_path)).returncode == 0


def test_yaml_syntax_error_exits_two_with_line_and_column(project: Project) -> None:
    project.write("agents:\n  codex: {runtime: codex\nissues: 1\n")
    proc = doctor_cli(str(project.workflow_path))
    assert proc.returncode == 2
    assert f"{project.workflow_path}:3:" in proc.stdout and "[yaml_syntax]" in proc.stdout
    code, data = cli_json(str(project.workflow_path))
    (err,) = data["errors"]
    assert code == 2 and err["code"] == "yaml_syntax" and err["line"] == 3 and err["column"] >= 1


def test_unknown_option_is_a_usage_error(project: Project) -> None:
    proc = doctor_cli("--bogus", str(project.workflow_path))
    assert proc.returncode == 2 and "usage: vik-tui doctor" in proc.stderr and "Traceback" not in proc.stderr


# -- --deep: run the pull command once -----------------------------------------------------------


def test_deep_reports_records_intake_would_reject(project: Project) -> None:
    project.write(base_workflow(project))
    project.set_issues(
        [
            {"id": "1", "title": "ok", "state": "todo"},
            {"id": "1", "title": "dup", "state": "todo"},
            {"id": "../etc", "title": "x", "state": "todo"},
            {"title": "no id", "state": "todo"},
            {"id": "5", "title": "waiting", "state": "review"},
        ]
    )
    assert doctor(str(project.workflow_path)).returncode == 0  # without --deep nothing runs
    code, data = doctor_json("--deep", str(project.workflow_path))
    assert code == 0 and data["errors"] == []
    messages = [w["message"] for w in data["warnings"] if w["code"] == "issue_rejected"]
    assert len(messages) == 3
    assert any("duplicate issue id '1'" in m for m in messages)
    assert any("unsafe issue id '../etc'" in m for m in messages)
    assert any("missing `id`" in m for m in messages)
    assert all(w["pointer"] == "issues.pull.command" and w["line"] for w in data["warnings"])
    assert len(data["warnings"]) == 3  # an issue in a state no stage handles (review) is normal, not a warning
    assert doctor("--deep", "--strict", str(project.workflow_path)).returncode == 1


def test_deep_runs_the_pull_command_from_the_workflow_dir(project: Project, tmp_path: Path) -> None:
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = "cat issues.json"  # relative: only works from the workflow dir
    project.write(wf)
    project.set_issues([{"id": "1", "title": "t", "state": "todo"}])
    code, data = doctor_json("--deep", str(project.workflow_path), cwd=tmp_path)
    assert (code, data) == (0, {"errors": [], "warnings": []})


@pytest.mark.parametrize(
    "command, expect",
    [
        ("echo boom >&2; exit 4", "pull command exited with code 4: boom"),
        ('echo \'{"not": "a list"}\'', "must be a JSON array"),
        ("echo not json", "not JSON"),
        ("true", "printed nothing"),
    ],
)
def test_deep_pull_failures_are_errors(project: Project, command: str, expect: str) -> None:
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = command
    project.write(wf)
    code, data = doctor_json("--deep", str(project.workflow_path))
    assert code == 1
    (err,) = data["errors"]
    assert err["code"] == "pull_failed" and expect in err["message"] and err["pointer"] == "issues.pull.command"


def test_deep_pull_timeout_is_bounded(project: Project) -> None:
    wf = base_workflow(project)
    wf["loop"]["pull_timeout_sec"] = 0.5
    wf["issues"]["pull"]["command"] = "sleep 1000"
    project.write(wf)
    code, data = doctor_json("--deep", str(project.workflow_path))
    assert code == 1 and "timed out after 0.5s" in data["errors"][0]["message"]


def test_deep_is_skipped_for_a_broken_workflow(project: Project) -> None:
    marker = project.root / "ran"
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = f"touch {shlex.quote(str(marker))}; echo []"
    wf["issue"]["stages"]["plan"]["agent"] = "nobody"
    project.write(wf)
    code, _ = doctor_json("--deep", str(project.workflow_path))
    assert code == 1 and not marker.exists()


# -- garbage in: a clear message and exit 1 or 2, never a traceback ------------------------------

VALID = {
    "agents": {"a": {"runtime": "codex", "model": "m", "command": str(FAKE_CODEX)}},
    "issues": {"pull": {"command": "echo []"}},
    "issue": {"stages": {"p": {"when": {"state": "todo"}, "agent": "a", "prompt": "x"}}},
}


def _with(**sections: Any) -> str:
    data = dict(VALID)
    data.update(sections)
    return yaml.safe_dump(data)


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


GARBAGE: dict[str, bytes | str] = {
    "binary bytes": bytes(range(256)) * 4,
    "utf-16 text": "agents: 1\n".encode("utf-16"),
    "latin-1 text": "title: caf\xe9\n".encode("latin-1"),
    "nul byte": b"agents:\x00 1\n",
    "control char": "agents: \x07\n",
    "empty file": "",
    "only a comment": "# nothing here\n",
    "yaml list": "- agents\n- issues\n",
    "yaml scalar": "just a string\n",
    "yaml number": "42\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "agents: 5": "agents: 5\nissues: 3\nissue: []\n",
    "agents: null": _with(agents=None),
    "agents list": _with(agents=[{"runtime": "codex"}]),
    "agent is a string": _with(agents={"a": "codex"}),
    "stages as a list": _with(issue={"stages": [{"when": {"state": "todo"}, "agent": "a", "prompt": "x"}]}),
    "stage is null": _with(issue={"stages": {"p": None}}),
    "stage is a number": _with(issue={"stages": {"p": 3}}),
    "when is a string": _with(issue={"stages": {"p": {"when": "todo", "agent": "a", "prompt": "x"}}}),
    "hooks are a list": _with(
        issue={"hooks": ["a"], "stages": {"p": {"when": {"state": "t"}, "agent": "a", "prompt": "x", "hooks": "b"}}}
    ),
    "deeply wrong types": "loop: [1]\nworkspace: 3\nagents: {a: [1, {b: [c]}]}\nissues: {pull: [x]}\n"
    "issue: {stages: {p: {when: [[]], agent: {}, prompt: [], prompt_file: {}}}}\n",
    "everything null": "loop: null\nworkspace: null\nagents: null\nissues: null\nissue: null\n",
    "non-string keys": "agents: {1: {runtime: codex}, null: {runtime: codex}, true: x}\n"
    "issues: {pull: {command: x}}\nissue: {stages: {3: {when: {state: t}, agent: a, prompt: x}}}\n",
    "empty keys": '"": 1\nagents: {"": {runtime: codex}}\nissues: {pull: {command: x}}\n'
    'issue: {stages: {"": {when: {state: t}, agent: "", prompt: x}}}\n',
    "complex key": "? [a, b]\n: c\n",
    "tabs": "agents:\n\tcodex:\n\t\truntime: codex\n",
    "tab after key": "agents:\t{}\nissues:\t5\n",
    "unclosed quote": 'agents: "codex\n',
    "unclosed flow": "agents: {a: [1, 2\n",
    "bad indentation": "agents:\n  a: 1\n b: 2\n",
    "duplicate keys": _with() + "agents: {}\n",
    "huge integer": _with(loop={"stage_timeout_sec": 10**400}),
    "5000-digit number": "loop: {stage_timeout_sec: " + "9" * 5000 + "}\n" + _with(),
    "huge concurrency": _with(loop={"max_issue_concurrency": 10**30, "wait_ms": 10**20}),
    "nan and inf": "loop: {stage_timeout_sec: .nan, stall_timeout_sec: .inf, cancel_grace_sec: -.inf}\n" + _with(),
    "negative and zero": _with(loop={"max_iterations": -1, "retry": {"max_attempts": 0, "backoff_sec": -2}}),
    "numbers as strings and bools": _with(loop={"stage_timeout_sec": "10", "hook_timeout_sec": True}),
    "huge strings": _with(agents={"a": {"runtime": "x" * 2_000_000}, "k" * 100_000: {"runtime": 5}}),
    "recursive alias": "agents: &a {x: *a}\n",
    "alias bomb": _alias_bomb(),
    "deep nesting": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep mapping nesting": "".join("  " * i + f"k{i}:\n" for i in range(200)),
    "python tag": "agents: !!python/object/apply:os.system [echo pwned]\n",
    "unknown tag": "agents: !custom {a: 1}\n",
    "binary tag": "agents: !!binary aGVsbG8=\n",
    "bad timestamp": "when: 2024-13-45\n",
    "bad int tag": "agents: !!int abc\n",
    "set tag": "agents: !!set {a, b}\n",
    "lone surrogate": 'agents: {"\\ud800": {runtime: codex}}\nissues: {pull: {command: "\\udcff"}}\n'
    'issue: {stages: {"\\ud800": {when: {state: t}, agent: a, prompt: x}}}\n',
    "unsafe stage names": _with(
        issue={
            "stages": {
                "../x": {"when": {"state": "t"}, "agent": "a", "prompt": "x"},
                ".h": {"when": {"state": "t"}, "agent": "a", "prompt": "x"},
            }
        }
    ),
    "two prompt sources": _with(
        issue={
            "stages": {"p": {"when": {"state": "t"}, "agent": "a", "prompt": "x", "prompt_file": "/nonexistent/p.md"}}
        }
    ),
    "unknown runtime": _with(agents={"a": {"runtime": "gpt", "args": {"x": {"y": [1, {"z": None}]}}}}),
    "workspace root wrong": _with(workspace={"root": ["a"]}),
    "only unknown fields": "foo: 1\nbar: [1, 2]\n",
}


@pytest.mark.parametrize("name", list(GARBAGE))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_garbage_never_crashes(project: Project, name: str, as_json: bool) -> None:
    content = GARBAGE[name]
    if isinstance(content, bytes):
        project.workflow_path.write_bytes(content)
    else:
        project.workflow_path.write_text(content, encoding="utf-8")
    args = ["--json"] if as_json else []
    proc = doctor(*args, str(project.workflow_path))  # an exception would fail the test here
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode in (1, 2), proc.stdout
    if as_json:
        data = json.loads(proc.stdout)
        assert data["errors"], data
        for item in data["errors"] + data["warnings"]:
            assert item["code"] and item["message"] and item["severity"] in ("error", "warning")
    else:
        assert "error [" in proc.stdout and "error(s)" in proc.stdout.splitlines()[-1]
    assert len(proc.stdout) < 50_000  # findings quote values, but never megabytes of them


# ("unreadable by mode" is not listed: CI runs as root, who reads any file; "proc mem" covers a failing read)
SPECIAL_PATHS = ["directory", "missing", "through a file", "proc mem", "name too long", "trailing slash"]


@pytest.mark.parametrize("kind", SPECIAL_PATHS)
def test_paths_that_cannot_be_read_exit_two(project: Project, tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        target = str(project.root)
    elif kind == "missing":
        target = str(tmp_path / "nope" / "workflow.yml")
    elif kind == "through a file":
        project.write(base_workflow(project))
        target = str(project.workflow_path / "inner.yml")
    elif kind == "proc mem":  # a file that exists but whose read fails (EIO), even for root
        if not Path("/proc/self/mem").exists():
            pytest.skip("needs Linux /proc")
        target = "/proc/self/mem"
    elif kind == "name too long":
        target = str(tmp_path / ("x" * 300 + ".yml"))
    else:
        target = str(tmp_path) + "/"
    proc = doctor(target)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stdout
    assert "error [file_" in proc.stdout


def test_non_utf8_file_names_the_offset(project: Project) -> None:
    project.workflow_path.write_bytes(b"agents: 1\nissues: caf\xe9\n")
    code, data = doctor_json(str(project.workflow_path))
    (err,) = data["errors"]
    assert code == 2 and err["code"] == "file_unreadable" and err["line"] == 2
    assert "not UTF-8" in err["message"] and "0xe9" in err["message"]


def test_garbage_messages_are_specific(project: Project) -> None:
    """Spot-check that the garbage table produces the right findings, not just any error."""
    cases = {
        "agents: 5": ("invalid_type", "agents"),
        "stages as a list": ("invalid_type", "issue.stages"),
        "recursive alias": ("yaml_recursive", ""),
        "alias bomb": ("yaml_too_large", ""),
        "deep nesting": ("yaml_too_deep", ""),
        "huge integer": ("too_large", "loop.stage_timeout_sec"),
        "yaml list": ("not_a_mapping", ""),
        "tabs": ("yaml_syntax", ""),
        "duplicate keys": ("duplicate_key", "agents"),
        "empty keys": ("empty_str", "agents."),
        "unsafe stage names": ("unsafe_stage_name", "issue.stages.../x"),
    }
    for name, (code, pointer) in cases.items():
        content = GARBAGE[name]
        project.workflow_path.write_text(content if isinstance(content, str) else "", encoding="utf-8")
        _, data = doctor_json(str(project.workflow_path))
        codes = [(e["code"] if isinstance(e["code"], str) else next(iter(e["code"]))) for e in data["errors"]]
        found = {(c, e["pointer"]) for c, e in zip(codes, data["errors"], strict=True)}
        assert (code, pointer) in found, (name, found)


def test_strings_with_shell_and_template_text_are_just_data(project: Project) -> None:
    marker = project.root / "pwned"
    text = textwrap.dedent(f"""\
        agents:
          a: {{runtime: codex, model: m, command: {FAKE_CODEX}}}
        issues:
          pull: {{command: "touch {marker}"}}
        issue:
          stages:
            p: {{when: {{state: t}}, agent: a, prompt: "`exec(touch {marker})` {{{{ ''.__class__ }}}}"}}
        """)
    project.write(text)
    proc = doctor(str(project.workflow_path))
    assert proc.returncode == 0, proc.stdout
    assert not marker.exists()  # doctor without --deep runs nothing
