"""Workflow reading as vik reads it: empty values, required model, whole-second integers, and
doctor's template and spelling checks (vik_compare §1, §9, §10)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from conftest import FAKE_CODEX, Project

from vik_tui.config import load_workflow
from vik_tui.config.diagnostics import Diagnostic


def load_text(project: Project, text: str) -> Any:
    project.write(textwrap.dedent(text).lstrip("\n"))
    return load_workflow(project.workflow_path, check_path=False)


def findings(result: Any) -> list[tuple[str, str, int | None]]:
    return [(d.code, d.pointer, d.line) for d in result.diagnostics]


def only(result: Any, code: str) -> Diagnostic:
    (found,) = [d for d in result.diagnostics if d.code == code]
    return found


EMPTY_VALUES = """
loop:

workspace:

agents:
  codex:
    runtime: codex
    model: gpt-5.5
    args:
issues:
  pull:
    command: cat issues.json
issue:
  hooks:
  stages:
    plan:
      when:
        state: todo
      agent: codex
      prompt: hi
      hooks:
"""


def test_empty_values_are_empty_maps(project: Project) -> None:
    """vik's own workflow.yml starts with `loop:` and nothing after it."""
    result = load_text(project, EMPTY_VALUES)
    assert result.ok and result.diagnostics == [], result.diagnostics
    wf = result.workflow
    assert wf.loop.max_issue_concurrency == 10 and wf.agents["codex"].args == {}
    assert wf.issue.hooks.after_create is None and wf.issue.stages["plan"].hooks.before_run is None
    # `workspace:` is `workspace: {}` (VIK_HOME or ~/.vik), not an absent section (<dir>/.vik)
    assert wf.workspace is not None and wf.workspace.root is None


@pytest.mark.parametrize(
    "old, new, pointer, line",
    [
        ("loop:\n", "loop: null\n", "loop", 1),
        ("workspace:\n", "workspace: ~\n", "workspace", 3),
        ("    args:\n", "    args: null\n", "agents.codex.args", 9),
        ("  hooks:\n  stages:", "  hooks: ~\n  stages:", "issue.hooks", 14),
    ],
)
def test_explicit_null_is_refused_as_vik_refuses_it(
    project: Project, old: str, new: str, pointer: str, line: int
) -> None:
    result = load_text(project, EMPTY_VALUES.replace(old, new, 1))
    assert not result.ok
    assert findings(result) == [("invalid_type", pointer, line)]
    assert "must be a mapping (got null)" in result.diagnostics[0].message


def test_a_quoted_empty_string_is_not_an_empty_map(project: Project) -> None:
    result = load_text(project, EMPTY_VALUES.replace("loop:\n", 'loop: ""\n', 1))
    assert ("invalid_type", "loop", 1) in findings(result)


def test_model_is_required(project: Project) -> None:
    result = load_text(project, EMPTY_VALUES.replace("    model: gpt-5.5\n", ""))
    assert findings(result) == [("missing_field", "agents.codex.model", 6)]
    blank = load_text(project, EMPTY_VALUES.replace("model: gpt-5.5", 'model: "  "'))
    assert findings(blank) == [("empty_str", "agents.codex.model", 8)]


@pytest.mark.parametrize("field", ["max_issue_concurrency", "wait_ms", "max_iterations"])
def test_integer_loop_fields_refuse_fractions(project: Project, field: str) -> None:
    result = load_text(project, EMPTY_VALUES.replace("loop:\n", f"loop:\n  {field}: 2.5\n", 1))
    assert ("invalid_type", f"loop.{field}", 2) in findings(result)


def test_idle_sec_refuses_fractions(project: Project) -> None:
    result = load_text(project, EMPTY_VALUES.replace("cat issues.json\n", "cat issues.json\n    idle_sec: 2.5\n"))
    assert ("invalid_type", "issues.pull.idle_sec", 13) in findings(result)


def test_empty_str_only_where_vik_checks(project: Project) -> None:
    """vik: `root: ' '` and blank hooks are accepted; `root: ''` and a blank state are not."""
    text = EMPTY_VALUES.replace("workspace:\n", "workspace:\n  root: ' '\n").replace(
        "      hooks:\n", "      hooks:\n        before_run: ' '\n"
    )
    assert load_text(project, text).ok
    text = EMPTY_VALUES.replace("workspace:\n", "workspace:\n  root: ''\n").replace("state: todo", "state: ' '")
    assert sorted(findings(load_text(project, text))) == [
        ("empty_str", "issue.stages.plan.when.state", 19),
        ("empty_str", "workspace.root", 4),
    ]


# -- doctor: templates ---------------------------------------------------------------------------


TEMPLATED = f"""
agents:
  codex:
    runtime: codex
    model: gpt-5.5
    command: {FAKE_CODEX}
issues:
  pull:
    command: cat {{{{ workflow_dir }}}}/issues.json
issue:
  hooks:
    after_create: |
      git init -q
      echo {{{{ issue.id }}}}
  stages:
    plan:
      when:
        state: todo
      agent: codex
      prompt: "Plan {{{{ issue.id }}}} in {{{{ workspace_root }}}} for {{{{ env.USER | default('me') }}}}"
      hooks:
        before_run: |
          echo {{{{ issue.stage }}}}
          {{% for x in range(2) %}}echo {{{{ x }}}}{{% endfor %}}
"""


def test_good_templates_pass(project: Project) -> None:
    result = load_text(project, TEMPLATED)
    assert result.ok and result.diagnostics == [], result.diagnostics


@pytest.mark.parametrize(
    "old, new, pointer, line, text",
    [
        # unclosed `{{` in a block hook: the line inside the hook, counted in the file
        ("echo {{ issue.id }}", "echo {{ issue.id", "issue.hooks.after_create", 13, "template syntax error"),
        (
            "echo {{ issue.stage }}",
            "echo {{ isue.stage }}",
            "issue.stages.plan.hooks.before_run",
            22,
            "did you mean `issue`",
        ),
        (
            "{{ workspace_root }}",
            "{{ workspace_rot }}",
            "issue.stages.plan.prompt",
            19,
            "undefined variable `workspace_rot`",
        ),
        ("cat {{ workflow_dir }}", "cat {{ issue.id }}", "issues.pull.command", 8, "undefined variable `issue`"),
        (
            "cat {{ workflow_dir }}",
            "cat ${#x} {{ workflow_dir }}",
            "issues.pull.command",
            8,
            "unexpected end of comment",
        ),
        ("echo {{ issue.id }}", "echo {{ issue.stage }}", "issue.hooks.after_create", 13, "`issue.stage` is undefined"),
    ],
)
def test_broken_templates_are_errors_with_their_line(
    project: Project, old: str, new: str, pointer: str, line: int, text: str
) -> None:
    result = load_text(project, TEMPLATED.replace(old, new, 1))
    found = only(result, "template_error")
    assert (found.pointer, found.line) == (pointer, line), found
    assert text in found.message


def test_broken_prompt_file_names_its_own_line(project: Project) -> None:
    prompts = project.root / "prompts"
    prompts.mkdir()
    (prompts / "plan.md").write_text("# Plan\n\nIssue {{ issue.id }}\nBy {{ who }}\n")
    text = TEMPLATED.replace(
        """prompt: "Plan {{ issue.id }} in {{ workspace_root }} for {{ env.USER | default('me') }}\"""",
        "prompt_file: prompts/plan.md",
    )
    found = only(load_text(project, text), "template_error")
    assert found.pointer == "issue.stages.plan.prompt_file" and found.line == 19
    assert found.message.startswith(f"{prompts / 'plan.md'}:4: undefined variable `who`")


def test_misspelt_key_and_agent_get_a_suggestion(project: Project) -> None:
    text = TEMPLATED.replace("    model: gpt-5.5", "    model: gpt-5.5\n    modle: x").replace(
        "agent: codex", "agent: codx"
    )
    result = load_text(project, text)
    assert "did you mean `model`?" in only(result, "unknown_field").message
    agent = only(result, "unknown_agent")
    assert "did you mean `codex`?" in agent.message
    assert agent.to_dict()["code"] == {"unknown_agent": "codx"}


def test_empty_workspace_is_not_an_absent_one(project: Project) -> None:
    """`workspace:` with an empty value reaches the layout as `{}`: the home is not `<dir>/.vik`."""
    from vik_tui.engine.service.paths import Layout

    result = load_text(project, EMPTY_VALUES)
    layout = Layout.for_workflow(result.workflow, project.workflow_path)
    assert layout.home != project.root / ".vik"


@pytest.mark.parametrize(
    "hook",
    [
        "{% if issue.stage is defined %}echo {{ issue.stage }}{% endif %}",
        "echo {{ issue.stage | default('none') }}",
        "{% if false %}echo {{ issue.stage }}{% endif %}",
        "echo {{ issue.count + 1 }} {{ issue.stage | default('') }}",
    ],
)
def test_a_guarded_issue_stage_in_after_create_passes(project: Project, hook: str) -> None:
    """vik runs these (the guard or the branch keeps `issue.stage` from being read)."""
    result = load_text(project, TEMPLATED.replace("echo {{ issue.id }}", hook, 1))
    assert result.ok and result.diagnostics == [], result.diagnostics


def test_a_non_string_args_key_is_skipped_as_vik_skips_it(project: Project) -> None:
    """vik reads `args` as a YAML mapping and leaves out entries whose key is not a string."""
    from vik_tui.agents.codex import build_command

    text = TEMPLATED.replace("model: gpt-5.5", "model: gpt-5.5\n    args: {5: x, --flag: true}", 1)
    result = load_text(project, text)
    assert result.ok and result.diagnostics == [], result.diagnostics
    assert result.workflow is not None
    agent = next(iter(result.workflow.agents.values()))
    assert build_command(agent)[1:4] == ["exec", "--flag", "--json"]
