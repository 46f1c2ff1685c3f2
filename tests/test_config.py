"""Workflow schema and loading: every vik field, our `loop:` extensions, diagnostics with lines."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_CODEX, Project, base_workflow

from vik_tui.config import Severity, load_workflow
from vik_tui.config.diagnostics import Diagnostic, dotted
from vik_tui.config.yaml_lines import MAX_DEPTH, MAX_NODES, YamlSyntaxError, parse_yaml


def load_text(project: Project, text: str, check_path: bool = True):  # type: ignore[no-untyped-def]
    project.write(textwrap.dedent(text).lstrip("\n"))
    return load_workflow(project.workflow_path, check_path=check_path)


def find(result: Any, code: str, pointer: str | None = None) -> Diagnostic:
    matches = [d for d in result.diagnostics if d.code == code and (pointer is None or d.pointer == pointer)]
    assert matches, f"no {code} at {pointer}; got {[(d.code, d.pointer) for d in result.diagnostics]}"
    assert len(matches) == 1, matches
    return matches[0]


GOOD = f"""
loop:
  max_issue_concurrency: 2
agents:
  codex:
    runtime: codex
    model: gpt-5.5
    command: {FAKE_CODEX}
issues:
  pull:
    command: cat issues.json
issue:
  stages:
    plan:
      when:
        state: todo
      agent: codex
      prompt: "Plan {{{{ issue.id }}}}"
"""


# -- schema: every field and the defaults -------------------------------------------------------


def test_defaults_of_our_loop_extensions(project: Project) -> None:
    result = load_text(project, GOOD)
    assert result.ok and result.diagnostics == []
    loop = result.workflow.loop
    assert (loop.max_issue_concurrency, loop.wait_ms, loop.max_iterations) == (2, 200, None)
    assert (loop.stage_timeout_sec, loop.stall_timeout_sec, loop.hook_timeout_sec, loop.cancel_grace_sec) == (
        3600,
        900,
        30,
        5,
    )
    assert (loop.retry.max_attempts, loop.retry.backoff_sec, loop.retry.max_backoff_sec) == (3, 10, 300)
    assert result.workflow.issues.pull.idle_sec == 5
    assert result.workflow.workspace is None  # absent, not {}: decides where the workspace lives


def test_loop_section_absent_gives_vik_defaults(project: Project) -> None:
    result = load_text(project, GOOD.replace("loop:\n  max_issue_concurrency: 2\n", ""))
    assert result.ok, result.diagnostics
    assert result.workflow.loop.max_issue_concurrency == 10


def test_every_vik_field_and_extension_is_read(project: Project) -> None:
    (project.root / "prompts").mkdir()
    (project.root / "prompts" / "impl.md").write_text("Implement {{ issue.title }}\n")
    result = load_text(
        project,
        f"""
        loop:
          max_issue_concurrency: 3
          wait_ms: 50
          max_iterations: 7
          stage_timeout_sec: 120
          stall_timeout_sec: 45.5
          hook_timeout_sec: 9
          cancel_grace_sec: 2
          retry:
            max_attempts: 4
            backoff_sec: 1.5
            max_backoff_sec: 60
        workspace:
          root: ./ws
        agents:
          codex:
            runtime: codex
            model: gpt-5.5
            command: {FAKE_CODEX}
            args:
              --sandbox: workspace-write
              --full-auto: true
              --skip: false
              --tries: 3
              --tools: [a, b]
          claude:
            runtime: claude_code
            model: opus
            command: {FAKE_CODEX}
        issues:
          pull:
            command: cat issues.json
            idle_sec: 2
        issue:
          hooks:
            after_create: git init -q
          stages:
            plan:
              when:
                state: todo
              agent: codex
              prompt: Plan it
              hooks:
                before_run: echo before
                after_run: echo after
            implement:
              when:
                state: doing
              agent: claude
              prompt_file: prompts/impl.md
        """,
    )
    assert result.ok and result.diagnostics == [], result.diagnostics
    wf = result.workflow
    assert wf.loop.max_iterations == 7 and wf.loop.stall_timeout_sec == 45.5
    assert isinstance(wf.loop.stage_timeout_sec, int)  # ints stay ints
    assert wf.loop.retry.max_attempts == 4 and wf.loop.retry.backoff_sec == 1.5
    assert wf.workspace is not None and wf.workspace.root == "./ws"
    assert wf.agents["codex"].args == {
        "--sandbox": "workspace-write",
        "--full-auto": True,
        "--skip": False,
        "--tries": 3,
        "--tools": ["a", "b"],
    }
    assert wf.agents["codex"].executable == str(FAKE_CODEX)
    assert wf.agents["claude"].runtime == "claude_code"
    assert wf.issue.hooks.after_create == "git init -q"
    assert list(wf.issue.stages) == ["plan", "implement"]  # file order is dispatch order
    assert wf.issue.stages["plan"].hooks.before_run == "echo before"
    assert wf.issue.stages["plan"].hooks.after_run == "echo after"
    assert wf.issue.stages["implement"].prompt_file == "prompts/impl.md"


def test_agent_command_is_optional(project: Project) -> None:
    result = load_text(project, GOOD.replace(f"    command: {FAKE_CODEX}\n", ""), check_path=False)
    assert result.ok
    assert result.workflow.agents["codex"].command is None
    assert result.workflow.agents["codex"].executable == "codex"


def test_workspace_empty_map_and_null_root_are_allowed(project: Project) -> None:
    for ws in ("workspace: {}\n", "workspace:\n  root: null\n"):
        result = load_text(project, ws + GOOD)
        assert result.ok and result.diagnostics == [], result.diagnostics
        assert result.workflow.workspace is not None and result.workflow.workspace.root is None


def test_yaml_anchors_and_merge_keys_work(project: Project) -> None:
    result = load_text(
        project,
        f"""
        base: &base
          runtime: codex
          command: {FAKE_CODEX}
        agents:
          a:
            <<: *base
            model: m1
          b:
            <<: *base
            model: m2
        issues:
          pull:
            command: cat issues.json
        issue:
          stages:
            plan:
              when: {{state: todo}}
              agent: b
              prompt: x
        """,
    )
    assert [d.code for d in result.diagnostics] == ["unknown_field"]  # only `base`
    assert result.ok
    assert result.workflow.agents["a"].model == "m1" and result.workflow.agents["b"].runtime == "codex"


# -- diagnostics: vik's checks, each with pointer, code and line ---------------------------------


def test_empty_strings_empty_maps_and_non_positive_numbers(project: Project) -> None:
    result = load_text(
        project,
        f"""
        loop:
          max_issue_concurrency: 0
          retry:
            backoff_sec: -1.5
        agents:
          codex:
            runtime: codex
            model: "  "
            command: {FAKE_CODEX}
        issues:
          pull:
            command: ""
            idle_sec: -3
        issue:
          stages: {{}}
        """,
    )
    assert not result.ok
    d = find(result, "non_positive_number", "loop.max_issue_concurrency")
    assert (d.line, d.severity) == (2, Severity.ERROR) and "got 0" in d.message
    assert d.to_dict()["code"] == {"non_positive_number": 0}  # vik's tagged form
    assert find(result, "non_positive_number", "loop.retry.backoff_sec").line == 4
    assert find(result, "empty_str", "agents.codex.model").line == 8
    assert find(result, "empty_str", "issues.pull.command").line == 12
    assert find(result, "non_positive_number", "issues.pull.idle_sec").line == 13
    assert find(result, "empty_map", "issue.stages").line == 15


def test_empty_agents_map(project: Project) -> None:
    result = load_text(
        project,
        """
        agents: {}
        issues: {pull: {command: x}}
        issue: {stages: {p: {when: {state: t}, agent: a, prompt: x}}}
        """,
    )
    assert find(result, "empty_map", "agents").line == 1


def test_agent_args_false_and_empty_are_not_flagged(project: Project) -> None:
    wf = base_workflow(project)
    wf["agents"]["codex"]["args"] = {"--flag": False, "--empty": "", "--zero": 0}
    project.write(wf)
    result = load_workflow(project.workflow_path)
    assert result.ok and result.diagnostics == []


def test_unknown_fields_are_warnings_with_their_line(project: Project) -> None:
    result = load_text(
        project, GOOD.replace("    model: gpt-5.5\n", "    model: gpt-5.5\n    temperature: 3\n") + "extra_top: 1\n"
    )
    assert result.ok  # warnings do not make a workflow unusable
    agent = find(result, "unknown_field", "agents.codex.temperature")
    assert agent.severity is Severity.WARNING and agent.line == 7 and "temperature" in agent.message
    top = find(result, "unknown_field", "extra_top")
    assert top.line == result.lines.line_of(("extra_top",)) and top.line > 15


def test_stage_agent_not_defined(project: Project) -> None:
    result = load_text(project, GOOD.replace("      agent: codex", "      agent: claude"))
    d = find(result, "unknown_agent", "issue.stages.plan.agent")
    assert d.line == 16 and "`claude`" in d.message and not result.ok


@pytest.mark.parametrize(
    "sources, detail",
    [
        ("", "neither is set"),
        ("      prompt: a\n      prompt_file: b.md\n", "both are set"),
        ("      prompt: null\n", "neither is set"),
    ],
)
def test_stage_needs_exactly_one_prompt_source(project: Project, sources: str, detail: str) -> None:
    text = GOOD.replace('      prompt: "Plan {{ issue.id }}"\n', sources)
    result = load_text(project, text)
    d = find(result, "prompt_source", "issue.stages.plan")
    assert d.line == 13 and detail in d.message


def test_unknown_runtime(project: Project) -> None:
    result = load_text(project, GOOD.replace("runtime: codex", "runtime: gemini"))
    d = find(result, "unknown_runtime", "agents.codex.runtime")
    assert d.line == 5 and "gemini" in d.message and "codex, claude_code" in d.message


def test_prompt_file_missing_is_resolved_from_the_workflow_dir(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GOOD.replace('      prompt: "Plan {{ issue.id }}"\n', "      prompt_file: prompts/plan.md\n")
    monkeypatch.chdir(tmp_path)  # not the workflow dir
    result = load_text(project, text)
    d = find(result, "prompt_file_missing", "issue.stages.plan.prompt_file")
    assert d.line == 17 and str(project.root / "prompts" / "plan.md") in d.message
    (project.root / "prompts").mkdir()
    (project.root / "prompts" / "plan.md").write_text("hi")
    assert load_workflow(project.workflow_path).ok


def test_prompt_file_with_tilde(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "p.md").write_text("x")
    monkeypatch.setenv("HOME", str(home))
    text = GOOD.replace('      prompt: "Plan {{ issue.id }}"\n', "      prompt_file: ~/p.md\n")
    assert load_text(project, text).ok


def test_agent_executable_not_on_path_is_a_warning(project: Project) -> None:
    result = load_text(project, GOOD.replace(f"command: {FAKE_CODEX}", "command: no-such-agent-binary-xyz"))
    d = find(result, "executable_not_found", "agents.codex.command")
    assert d.severity is Severity.WARNING and d.line == 7 and "no-such-agent-binary-xyz" in d.message
    assert result.ok
    # without `command`, the runtime's CLI is looked up
    result = load_text(project, GOOD.replace(f"    command: {FAKE_CODEX}\n", ""))
    path_hits = [d for d in result.diagnostics if d.code == "executable_not_found"]
    import shutil

    assert bool(path_hits) == (shutil.which("codex") is None)
    # check_path=False skips the lookup (hot reload, tests)
    assert (
        load_text(project, GOOD.replace(f"command: {FAKE_CODEX}", "command: nope-xyz"), check_path=False).diagnostics
        == []
    )


def test_missing_sections_and_fields(project: Project) -> None:
    result = load_text(
        project,
        """
        agents:
          a:
            model: m
        issue:
          stages:
            p:
              agent: a
              prompt: x
        """,
    )
    codes = {(d.code, d.pointer) for d in result.diagnostics}
    assert ("missing_field", "issues") in codes
    assert ("missing_field", "agents.a.runtime") in codes
    assert ("missing_field", "issue.stages.p.when") in codes
    runtime = find(result, "missing_field", "agents.a.runtime")
    assert runtime.line == 2  # the agent's own line: the field has none
    assert find(result, "missing_field", "issues").message == "required section `issues` is missing"


@pytest.mark.parametrize(
    "field, value, expect",
    [
        ("stage_timeout_sec", '"10"', "valid number"),
        ("stage_timeout_sec", "true", "valid number"),
        ("stage_timeout_sec", "[1]", "valid number"),
        ("max_issue_concurrency", "2.5", "valid integer"),
        ("max_issue_concurrency", '"4"', "valid integer"),
        ("wait_ms", "{a: 1}", "valid integer"),
    ],
)
def test_numbers_must_be_numbers(project: Project, field: str, value: str, expect: str) -> None:
    result = load_text(project, GOOD.replace("  max_issue_concurrency: 2\n", f"  {field}: {value}\n"))
    d = find(result, "invalid_type", f"loop.{field}")
    assert d.line == 2 and expect in d.message and "got" in d.message
    assert result.workflow is None and not result.ok


@pytest.mark.parametrize(
    "value, code, text",
    [
        (".nan", "not_finite", "finite"),
        (".inf", "not_finite", "finite"),
        ("-.inf", "not_finite", "finite"),
        ("1" + "0" * 400, "too_large", "401-digit"),
        ("1e12", None, None),  # YAML 1.1: `1e12` without a dot is a string
        ("2000000000.0", "too_large", "at most"),
    ],
)
def test_non_finite_and_huge_numbers_are_errors(
    project: Project, value: str, code: str | None, text: str | None
) -> None:
    result = load_text(project, GOOD.replace("  max_issue_concurrency: 2\n", f"  stage_timeout_sec: {value}\n"))
    assert not result.ok
    if code is None:
        assert find(result, "invalid_type", "loop.stage_timeout_sec").line == 2
        return
    d = find(result, code, "loop.stage_timeout_sec")
    assert d.line == 2 and text in d.message
    # one clear finding per field, not a pile of pydantic branch errors
    assert [x.code for x in result.diagnostics if x.pointer == "loop.stage_timeout_sec"] == [code]


def test_wrong_types_everywhere_each_name_their_pointer(project: Project) -> None:
    result = load_text(
        project,
        """
        loop: 5
        agents:
          a: [runtime, codex]
          b: {runtime: 3, args: [x]}
        issues:
          pull: {command: [ls]}
        issue:
          hooks: nope
          stages:
            p: {when: {state: 1}, agent: {x: 1}, prompt: 5}
            q: null
        """,
    )
    pointers = {d.pointer for d in result.errors if d.code == "invalid_type"}
    assert {
        "loop",
        "agents.a",
        "agents.b.runtime",
        "agents.b.args",
        "issues.pull.command",
        "issue.hooks",
        "issue.stages.p.when.state",
        "issue.stages.p.agent",
        "issue.stages.p.prompt",
        "issue.stages.q",
    } <= pointers
    assert all(d.line is not None for d in result.diagnostics)
    assert find(result, "invalid_type", "issue.stages.q").line == 11


def test_non_string_keys_are_named_as_written(project: Project) -> None:
    result = load_text(
        project,
        """
        agents:
          7: {runtime: codex}
        issues: {pull: {command: x}}
        issue:
          stages:
            p: {when: {state: t}, agent: "7", prompt: x}
        """,
    )
    d = find(result, "invalid_type", "agents.7")
    assert d.line == 2 and "key `7` must be a string" in d.message and "quote" in d.message


def test_duplicate_keys_are_errors_naming_both_lines(project: Project) -> None:
    result = load_text(
        project,
        GOOD
        + """\
    plan:
      when:
        state: doing
      agent: codex
      prompt: again
""",
    )
    d = find(result, "duplicate_key", "issue.stages.plan")
    assert d.line == 18 and "first defined on line 13" in d.message
    assert not result.ok


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "x" * 201])
def test_stage_names_must_be_safe_file_name_parts(project: Project, name: str) -> None:
    result = load_text(project, GOOD.replace("    plan:", f"    {name!r}:"))
    d = next(d for d in result.diagnostics if d.code == "unsafe_stage_name")
    assert d.line == 13 and "session file" in d.message


def test_diagnostics_are_sorted_by_line_and_deduplicated(project: Project) -> None:
    result = load_text(
        project,
        """
        agents:
          a: {runtime: nope}
        issues: {pull: {command: ""}}
        issue:
          stages:
            p: {when: {state: t}, agent: b}
        zzz: 1
        """,
    )
    lines = [d.line or 0 for d in result.diagnostics]
    assert lines == sorted(lines)
    keys = [(d.pointer, d.code) for d in result.diagnostics]
    assert len(keys) == len(set(keys))


# -- YAML problems: syntax, hostile documents, not a mapping ---------------------------------


def test_yaml_syntax_error_has_line_and_column(project: Project) -> None:
    result = load_text(project, "agents:\n  a: {runtime: codex\nissues: x\n")
    assert result.fatal and result.workflow is None
    (d,) = result.diagnostics
    assert d.code == "yaml_syntax" and d.line == 3 and d.column is not None
    assert "YAML syntax error" in d.message


def test_tab_indentation_is_a_syntax_error(project: Project) -> None:
    result = load_text(project, "agents:\n\ta: 1\n")
    (d,) = result.diagnostics
    assert result.fatal and d.code == "yaml_syntax" and (d.line, d.column) == (2, 1)


@pytest.mark.parametrize(
    "text, kind", [("", "empty"), ("# nothing\n", "empty"), ("- a\n- b\n", "list"), ("hello\n", "str"), ("42\n", "int")]
)
def test_top_level_must_be_a_mapping(project: Project, text: str, kind: str) -> None:
    result = load_text(project, text)
    (d,) = result.diagnostics
    assert result.fatal and d.code == "not_a_mapping" and f"(got {kind})" in d.message and d.line == 1


def test_recursive_alias_is_refused(project: Project) -> None:
    result = load_text(project, "agents: &a\n  x: *a\n")
    (d,) = result.diagnostics
    assert result.fatal and d.code == "yaml_recursive" and d.line == 1


def test_alias_bomb_is_refused_quickly(project: Project) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    result = load_text(project, "\n".join(lines) + "\n")
    (d,) = result.diagnostics
    assert result.fatal and d.code == "yaml_too_large" and str(MAX_NODES) in d.message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 5000])
def test_absurd_nesting_is_refused(project: Project, depth: int) -> None:
    result = load_text(project, "x: " + "[" * depth + "]" * depth + "\n")
    (d,) = result.diagnostics
    assert result.fatal and d.code == "yaml_too_deep"


def test_unbuildable_scalar_names_its_line(project: Project) -> None:
    result = load_text(project, "a: 1\nb:\n  c: 2\n  d: 2024-13-45\n")
    (d,) = result.diagnostics
    assert result.fatal and d.line == 4 and "cannot be read" in d.message


def test_python_tags_are_refused(project: Project) -> None:
    result = load_text(project, "agents: !!python/object/apply:os.system [echo pwned]\n")
    assert result.fatal and result.diagnostics[0].code == "yaml_syntax"


def test_file_problems(tmp_path: Path) -> None:
    missing = load_workflow(tmp_path / "nope.yml")
    assert (
        missing.fatal and missing.diagnostics[0].code == "file_missing" and "nope.yml" in missing.diagnostics[0].message
    )
    directory = load_workflow(tmp_path)
    assert (
        directory.fatal
        and directory.diagnostics[0].code == "file_unreadable"
        and "directory" in directory.diagnostics[0].message
    )
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"\x00\xff\xfe\x80garbage")
    result = load_workflow(binary)
    assert (
        result.fatal
        and result.diagnostics[0].code == "file_unreadable"
        and "not UTF-8" in result.diagnostics[0].message
    )


def test_relative_path_is_taken_from_cwd(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write(base_workflow(project))
    monkeypatch.chdir(project.root)
    result = load_workflow("workflow.yml")
    assert result.ok and result.path == project.workflow_path


# -- the pieces ------------------------------------------------------------------------------


def test_parse_yaml_line_map() -> None:
    data, lines = parse_yaml("a:\n  b:\n    - x\n    - y: 1\nc: 2\n")
    assert data == {"a": {"b": ["x", {"y": 1}]}, "c": 2}
    assert lines.line_of(("a", "b")) == 2
    assert lines.line_of(("a", "b", 1, "y")) == 4
    assert lines.line_of(("a", "b", 1, "nope")) == 4  # nearest ancestor
    assert lines.line_of(("zzz",)) == 1


def test_parse_yaml_raises_its_own_error() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml("a: [1, 2\n")
    assert info.value.line == 2 and info.value.code == "yaml_syntax"


def test_dotted_pointer_and_render() -> None:
    assert dotted(("issue", "stages", "plan", "agent")) == "issue.stages.plan.agent"
    assert dotted(("a", 0, "b")) == "a[0].b"
    d = Diagnostic(Severity.ERROR, "issue.stages.plan.agent", "unknown_agent", "agent `x` is not defined", 12)
    assert (
        d.render("workflow.yml")
        == "workflow.yml:12: error [unknown_agent] issue.stages.plan.agent: agent `x` is not defined"
    )
    assert d.to_dict() == {
        "severity": "error",
        "pointer": "issue.stages.plan.agent",
        "code": "unknown_agent",
        "message": "agent `x` is not defined",
        "line": 12,
    }
