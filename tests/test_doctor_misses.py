"""Issue #17 item 6: what doctor missed. An unknown filter or test is a `template_error` with
its line; an agent program given as a path that is not there is an error without --deep, in
plain words; `issue.outcome` is the outcome object (its printed form is still the state, and a
string comparison is named); a YAML syntax error shows the line and a caret under the column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Project, base_workflow
from engine_helpers import Harness
from test_doctor import doctor, doctor_json

from vik_tui.engine import engine_events as ee


def _findings(data: dict[str, list[dict[str, Any]]], kind: str) -> list[tuple[str, str, int | None]]:
    return [(d["code"], d["pointer"], d["line"]) for d in data[kind]]


def test_an_unknown_filter_is_a_template_error_with_its_line(project: Project) -> None:
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "git checkout -B issue-{{ issue.id | shqoute }}"}
    code, data = doctor_json(str(project.write(wf)))
    assert code == 1
    (error,) = data["errors"]
    assert (error["code"], error["pointer"]) == ("template_error", "issue.stages.plan.hooks.before_run")
    assert error["message"].startswith("unknown filter `shqoute`; did you mean `shquote`?"), error
    assert (
        error["line"]
        == project.workflow_path.read_text()
        .splitlines()
        .index("        before_run: git checkout -B issue-{{ issue.id | shqoute }}")
        + 1
    )


def test_an_unknown_test_in_a_prompt_file_names_the_file_line(project: Project) -> None:
    (project.root / "p.md").write_text("Work on {{ issue.id }}\n{% if issue.title is nonempty %}x{% endif %}\n")
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"] = {"when": {"state": "todo"}, "agent": "codex", "prompt_file": "p.md"}
    code, data = doctor_json(str(project.write(wf)))
    assert code == 1
    assert data["errors"][0]["message"] == f"{project.root / 'p.md'}:2: unknown test `nonempty`"


def test_known_filters_tests_and_strings_with_bars_pass(project: Project) -> None:
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["prompt"] = (
        '{{ "a|b" }} {{ issue.title | upper | replace("x", "y") }} {% if issue.id is defined %}{% endif %}'
        " {{ issue.id is divisibleby(2) }}"
    )
    assert doctor_json(str(project.write(wf))) == (0, {"errors": [], "warnings": []})


def test_a_missing_agent_path_is_an_error_without_deep(project: Project) -> None:
    wf = base_workflow(project)
    wf["agents"]["codex"]["command"] = "./bin/codexx --flag"
    code, data = doctor_json(str(project.write(wf)))
    assert code == 1
    (error,) = data["errors"]
    assert (error["code"], error["pointer"]) == ("executable_not_found", "agents.codex.command")
    assert error["message"] == (
        f"the agent program `./bin/codexx` does not exist (resolved from the workflow's directory:"
        f" {project.root / 'bin' / 'codexx'})"
    )
    assert "PATH" not in error["message"]


def test_an_agent_path_that_is_not_executable_says_chmod(project: Project) -> None:
    program = project.root / "codex.sh"
    program.write_text("#!/bin/sh\n")
    wf = base_workflow(project)
    wf["agents"]["codex"]["command"] = str(program)
    code, data = doctor_json(str(project.write(wf)))
    assert code == 1
    assert data["errors"][0]["message"] == f"the agent program `{program}` is not executable (chmod +x {program})"


async def test_issue_outcome_is_the_outcome_object(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "outcome.txt"
    project.set_issues([{"id": "A-1", "title": "one", "state": "todo"}])
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["hooks"] = {
        "after_run": f"echo '{{{{ issue.outcome.state }}}} {{{{ issue.outcome.exit_code }}}}'"
        f" {{{{ issue.outcome.reason | shquote }}}} {{{{ issue.outcome.attempt }}}} > {out}"
    }
    workflow = project.write(wf)
    assert doctor_json(str(workflow)) == (0, {"errors": [], "warnings": []})
    h = Harness(workflow).start()
    hook = await h.wait_event(ee.HookFinished, 60, hook="after_run")
    assert hook.ok, hook
    await h.finish(60)
    assert out.read_text() == "completed 0 completed 1\n"


@pytest.mark.parametrize(
    "hook", ['{% if issue.outcome == "completed" %}git push{% endif %}', "git commit -m {{ issue.outcome | shquote }}"]
)
def test_the_old_string_form_of_issue_outcome_is_named(project: Project, hook: str) -> None:
    wf = base_workflow(project)
    wf["issue"]["stages"]["plan"]["hooks"] = {"after_run": hook}
    code, data = doctor_json(str(project.write(wf)))
    assert code == 0 and data["errors"] == []
    (warning,) = data["warnings"]
    assert warning["code"] == "outcome_object" and "issue.outcome.state" in warning["message"]


def test_a_yaml_indentation_error_shows_the_line_and_a_caret(project: Project) -> None:
    project.write("loop:\n  max_issue_concurrency: 2\n agents:\n  x: 1\n")
    ran = doctor(str(project.workflow_path))
    assert ran.returncode == 2
    lines = ran.stdout.splitlines()
    assert lines[0].startswith(f"{project.workflow_path}:3:2: error [yaml_syntax] YAML syntax error: the indentation")
    assert "keys of one mapping start in the same column" in lines[0]
    assert lines[1:3] == ["    3 |  agents:", "      |  ^"]


def test_a_colon_in_an_unquoted_value_says_quote_it(project: Project) -> None:
    project.write("issues:\n  pull:\n    command: echo a: b\n")
    ran = doctor(str(project.workflow_path))
    assert ran.returncode == 2
    assert "a value holding `: ` needs quotes" in ran.stdout
    assert "    3 |     command: echo a: b\n      |                    ^" in ran.stdout
