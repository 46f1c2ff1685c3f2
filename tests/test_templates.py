"""Templates: vik's engine (MiniJinja, strict, read-only data), the shquote filter, and prompt exec(...) expansion."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import fresh_python
from hypothesis import given
from hypothesis import strategies as st

from vik_tui.config.jinja import STAGE_NAMES, TEMPLATE_NAME, check_template, environment, plain_text, with_context
from vik_tui.engine.intake import Issue
from vik_tui.engine.stages.templates import (
    EXEC_TIMEOUT_SEC,
    TemplateError,
    build_context,
    expand_exec,
    pull_context,
    render,
    render_prompt,
    shquote,
    without_stage,
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "issues" / "ENG-1"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def context(tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("VIK_TEST_TOKEN", "tok-123")
    issue = Issue(
        id="ENG-1",
        title="Fix the flaky test",
        state="todo",
        description="It fails on Tuesdays",
        extra={"priority": 2, "labels": ["bug", "ci"], "assignee": {"name": "ada"}},
    )
    return build_context(issue.template_fields(), "plan", workdir, tmp_path / "ws", tmp_path / "proj" / "workflow.yml")


def test_context_has_everything_vik_exposes(context: dict[str, Any], tmp_path: Path, workdir: Path) -> None:
    source = (
        "{{ issue.id }}|{{ issue.title }}|{{ issue.description }}|{{ issue.state }}|{{ issue.workdir }}|"
        "{{ issue.stage }}|{{ workspace_root }}|{{ workflow_path }}|{{ workflow_dir }}|{{ env.VIK_TEST_TOKEN }}"
    )
    assert render(source, context).split("|") == [
        "ENG-1",
        "Fix the flaky test",
        "It fails on Tuesdays",
        "todo",
        str(workdir),
        "plan",
        str(tmp_path / "ws"),
        str(tmp_path / "proj" / "workflow.yml"),
        str(tmp_path / "proj"),
        "tok-123",
    ]


def test_after_create_has_no_stage(context: dict[str, Any], tmp_path: Path, workdir: Path) -> None:
    """vik builds after_create's context per issue, without `issue.stage` (a strict error)."""
    with pytest.raises(TemplateError, match=r"`issue.stage` is undefined"):
        render("{{ issue.stage }}", without_stage(context))
    assert render("{{ issue.id }} {{ issue.workdir }}", without_stage(context)) == f"ENG-1 {workdir}"
    fields = {"id": "X", "title": "t", "state": "s", "description": "", "stage": "from the tracker"}
    bare = build_context(fields, None, workdir, tmp_path, tmp_path / "workflow.yml")
    assert "stage" not in bare["issue"] and context["issue"]["stage"] == "plan"


def test_pull_context_has_no_issue(tmp_path: Path) -> None:
    context = pull_context(tmp_path / "wf" / "workflow.yml", tmp_path / "root")
    expected = f"{tmp_path / 'wf'}/pull {tmp_path / 'root'}"
    assert render("{{ workflow_dir }}/pull {{ workspace_root }}", context) == expected
    with pytest.raises(TemplateError, match="undefined"):
        render("{{ issue.id }}", context)


def test_extra_fields_are_visible(context: dict[str, Any]) -> None:
    out = render("{{ issue.priority }} {{ issue.labels | join(',') }} {{ issue.assignee.name }}", context)
    assert out == "2 bug,ci ada"


def test_control_structures_and_filters_work(context: dict[str, Any]) -> None:
    source = "{% for l in issue.labels %}[{{ l | upper }}]{% endfor %}{% if issue.priority > 1 %} urgent{% endif %}"
    assert render(source, context) == "[BUG][CI] urgent"


def test_one_trailing_newline_is_dropped_as_vik_does(context: dict[str, Any]) -> None:
    assert render("line\n", context) == "line"
    assert render("line\n\n", context) == "line\n"
    assert render("line", context) == "line"


@pytest.mark.parametrize(
    "source, printed",
    [
        ("{{ true }}|{{ false }}", "true|false"),
        ("{{ none }}", "none"),
        ('{{ ["bug", "ui"] }}', '["bug", "ui"]'),
        ("{{ issue.labels }}", '["bug", "ci"]'),
        ("{{ issue.assignee }}", '{"name": "ada"}'),
        ('{{ {"b": "x", "a": 1} }}', '{"b": "x", "a": 1}'),  # a map written in a template: see below
        ("{{ issue.labels == ['bug', 'ci'] }}", "true"),  # a tracker list is a plain list
        ("{{ 2.5 | round }} {{ issue.priority / 1 }}", "3.0 2.0"),  # vik's round and floats
        ("{{ [none, true, 1, 2.5] }}", "[none, true, 1, 2.5]"),
        ('{{ "" }}', ""),
        ("{{ issue.priority }}", "2"),
        ("{% if issue.missing_or_none is defined %}y{% else %}n{% endif %}", "n"),
        ("{{ nope | default('d') }}", "d"),
    ],
)
def test_values_print_as_minijinja_prints_them(context: dict[str, Any], source: str, printed: str) -> None:
    assert render(source, context) == printed


def test_lists_have_no_python_methods(context: dict[str, Any]) -> None:
    """vik has no `pycompat`; lists reach MiniJinja as its own sequences (maps stay read-only proxies)."""
    with pytest.raises(TemplateError, match="has no method named count"):
        render("{{ issue.labels.count('bug') }}", context)


@pytest.mark.parametrize(
    "source, name",
    [
        ("{{ nope }}", "`nope` is undefined"),
        ("{{ issue.nope }}", "nope"),
        ("{{ env.VIK_SURELY_UNSET_VAR }}", "VIK_SURELY_UNSET_VAR"),
        ("{% if missing_flag %}x{% endif %}", "missing_flag"),
        ("{{ issue.assignee.email }}", "email"),
    ],
)
def test_unknown_variables_are_errors_naming_them(context: dict[str, Any], source: str, name: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(source, context, "hook before_run")
    message = str(info.value)
    assert message.startswith("hook before_run: undefined variable") and name in message


def test_syntax_errors_name_the_line(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"stage plan prompt: template syntax error at line 2"):
        render("ok\n{{ issue.id \n", context, "stage plan prompt")
    with pytest.raises(TemplateError, match="syntax error"):
        render("{% for %}", context)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ issue.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
        "{{ env.__class__.__init__ }}",
        "{% set x = ''.__class__ %}{{ x }}",
        "{{ ''.format.__self__ }}",
        "{{ render.__globals__ }}",
    ],
)
def test_sandbox_blocks_attribute_tricks(context: dict[str, Any], source: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(source, context)
    assert "object at 0x" not in str(info.value) and "<class" not in str(info.value)


def test_sandbox_names_what_it_blocked(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ ''.__class__.__mro__ }}", context, "stage plan prompt")
    assert str(info.value).startswith("stage plan prompt: undefined variable at line 1")


def test_an_undefined_name_is_named(context: dict[str, Any]) -> None:
    """MiniJinja 2.19 says only "undefined value": the message names what the context lacks."""
    with pytest.raises(TemplateError) as info:
        render("{{ issue.id }}\n{{ issue.nope }}", context, "stage plan prompt")
    assert str(info.value) == "stage plan prompt: undefined variable at line 2 (`issue.nope` is undefined)"


def test_a_tracker_map_iterates_sorted_as_vik_hands_it(context: dict[str, Any]) -> None:
    """vik's maps are sorted by key (JSON through serde); a map written in a template keeps its
    order in the binding's build (docs/vik-compatibility.md lists it)."""
    context = {**context, "issue": {**context["issue"], "meta": {"zeta": 1, "alpha": 2}}}
    assert render("{% for k in issue.meta %}{{ k }} {% endfor %}{{ issue.meta }}", context) == (
        'alpha zeta {"alpha": 2, "zeta": 1}'
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ issue.labels.append('x') }}",
        "{{ issue.assignee.update(name='eve') }}",
        "{{ issue.labels.__setitem__(0, 'y') }}",
        "{{ issue.assignee.clear() }}",
    ],
)
def test_templates_cannot_modify_the_issue(context: dict[str, Any], source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, context)
    assert context["issue"]["labels"] == ["bug", "ci"] and context["issue"]["assignee"] == {"name": "ada"}


def test_runaway_templates_fail_cleanly(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"range has too many elements"):
        render("{% for i in range(10**9) %}{% endfor %}", context)
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"ran too long"):
        render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", context)
    assert time.monotonic() - started < 30
    with pytest.raises(TemplateError):
        render("{{ 1 // 0 }}", context)


# -- shquote ------------------------------------------------------------------------------------

NASTY = [
    "'; rm -rf /",
    "plain",
    "",
    "a b  c",
    "$(touch pwned)",
    "`touch pwned`",
    "back\\slash",
    'say "hi"',
    "it's",
    "new\nline",
    "tab\there",
    "*",
    "~",
    "-n",
    "é ☃ 🙂",
    "${HOME}",
    "!!",
    ";&|<>",
]


@pytest.mark.parametrize("title", NASTY)
def test_shquote_round_trips_through_sh(context: dict[str, Any], workdir: Path, title: str) -> None:
    context["issue"]["title"] = title
    script = render("printf '%s' {{ issue.title | shquote }}", context)
    out = subprocess.run(["sh", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == title
    assert not (workdir / "pwned").exists()


def test_shquote_with_echo_as_in_the_issue(context: dict[str, Any], workdir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    context["issue"]["title"] = f"'; rm -rf {victim}; echo '"
    script = render("echo {{ issue.title | shquote }}", context)
    out = subprocess.run(["sh", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert out.stdout == f"'; rm -rf {victim}; echo '\n"
    assert victim.is_dir()


def test_shquote_values() -> None:
    assert shquote(None) == "''"
    assert shquote(42) == "42"
    assert shlex.split(shquote("a'b")) == ["a'b"]


# -- prompt exec(...) expansion ------------------------------------------------------------------


async def test_exec_forms_are_expanded_in_the_workspace(context: dict[str, Any], workdir: Path) -> None:
    (workdir / "notes.txt").write_text("remember the milk\n")
    source = "A !`exec(cat notes.txt)` B `exec(pwd)` C `exec(printf 'x\\n\\n')`."
    out = await render_prompt(source, context, workdir)
    assert out == f"A remember the milk B {workdir} C x\n."  # exactly one trailing newline trimmed


async def test_exec_sees_rendered_variables(context: dict[str, Any], workdir: Path) -> None:
    out = await render_prompt("`exec(echo {{ issue.id | shquote }}-{{ issue.stage }})`", context, workdir)
    assert out == "ENG-1-plan"


async def test_exec_with_parentheses_and_multiline_output(context: dict[str, Any], workdir: Path) -> None:
    out = await render_prompt("[`exec(echo $(echo a); printf 'b\\nc\\n')`]", context, workdir)
    assert out == "[a\nb\nc]"


async def test_exec_non_zero_exit_fails_the_render(context: dict[str, Any], workdir: Path) -> None:
    with pytest.raises(TemplateError) as info:
        await render_prompt("before `exec(echo partial; echo broken >&2; exit 7)` after", context, workdir)
    assert "exited with code 7" in str(info.value) and "broken" in str(info.value)


async def test_exec_timeout_kills_the_group(context: dict[str, Any], workdir: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"timed out after 2s"):  # 2 s: the pid is written first, even under load
        await render_prompt(f"`exec(sleep 1000 & echo $! > {pidfile}; wait)`", context, workdir, exec_timeout_sec=2)
    assert time.monotonic() - started < 30  # bounded: nowhere near `sleep 1000`
    pid = int(pidfile.read_text())
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_expand_exec_timeout_argument(workdir: Path) -> None:
    assert EXEC_TIMEOUT_SEC == 30
    with pytest.raises(TemplateError, match=r"timed out after 0\.2s"):
        await expand_exec("`exec(sleep 1000)`", workdir, timeout_sec=0.2)
    assert await expand_exec("no exec here", workdir) == "no exec here"


async def test_exec_in_a_missing_workspace_is_a_template_error(context: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="could not start"):
        await render_prompt("`exec(echo hi)`", context, tmp_path / "missing")


async def test_undefined_variable_in_a_prompt_runs_nothing(context: dict[str, Any], workdir: Path) -> None:
    with pytest.raises(TemplateError, match="undefined"):
        await render_prompt("`exec(touch ran)` {{ nope }}", context, workdir)
    assert not (workdir / "ran").exists()


@pytest.mark.parametrize("field", ["title", "description", "labels"])
async def test_tracker_text_cannot_inject_exec(context: dict[str, Any], workdir: Path, field: str) -> None:
    """An issue whose text contains `exec(...)` must not run commands on the operator's machine."""
    payload = "`exec(touch pwned)` and !`exec(touch pwned2)`"
    context["issue"][field] = [payload] if field == "labels" else payload
    source = f"Issue: {{{{ issue.{field} }}}}"
    out = await render_prompt(source, context, workdir)
    assert not (workdir / "pwned").exists() and not (workdir / "pwned2").exists()
    assert payload in out  # kept literally, backticks and all


async def test_injected_text_inside_a_real_exec_stays_quoted(context: dict[str, Any], workdir: Path) -> None:
    context["issue"]["title"] = "x)` `exec(touch pwned)"
    out = await render_prompt("`exec(printf '%s' {{ issue.title | shquote }})`", context, workdir)
    assert out == "x)` `exec(touch pwned)"
    assert not (workdir / "pwned").exists()


async def test_private_use_characters_survive(context: dict[str, Any], workdir: Path) -> None:
    context["issue"]["title"] = "\ue000\ue001 \ue000\ue002 `"
    assert await render_prompt("{{ issue.title }}", context, workdir) == "\ue000\ue001 \ue000\ue002 `"


@pytest.mark.parametrize("source", ["{{ issue.labels | tojson }}", "{{ 'a b' | urlencode }}"])
def test_filters_vik_does_not_have_are_absent(context: dict[str, Any], source: str) -> None:
    """vik's MiniJinja is built without `json` and `urlencode`: a workflow using them fails there."""
    with pytest.raises(TemplateError, match="is unknown"):
        render(source, context)


# Text with braces, percent and hash signs, newlines of every kind, but none of `{{`, `{%`, `{#`.
_PLAIN = (
    st.lists(st.sampled_from(["a", " ", "\n", "\r", "\r\n", "\t", "{", "}", "%", "#", "é", "$", "`"]))
    .map("".join)
    .filter(lambda text: "{{" not in text and "{%" not in text and "{#" not in text)
)


@given(source=_PLAIN)
def test_a_template_without_syntax_renders_as_minijinja_renders_it(source: str) -> None:
    """Templates with no syntax at all skip MiniJinja (`config.jinja.plain_text`): what they
    give is what MiniJinja gives for them (the text, less one trailing newline), with the same
    context set first, and doctor finds nothing wrong with them either."""
    context = {"issue": {"id": "A", "title": "t"}, "env": {"HOME": "/root"}, "workflow_dir": "/w"}
    assert plain_text(source)
    assert render(source, context) == environment().render_str(with_context(source, context), TEMPLATE_NAME)
    assert check_template(source, STAGE_NAMES) is None


def test_a_run_with_plain_templates_never_loads_minijinja(tmp_path: Path) -> None:
    """A workflow whose pull command and prompt have no template syntax is checked and rendered
    without the engine (2.6 MiB of a supervisor); one with syntax still loads it."""
    code = (
        "import sys\n"
        "from vik_tui.config.jinja import check_template, STAGE_NAMES\n"
        "from vik_tui.engine.stages.templates import render\n"
        "assert check_template('cat issues.json\\n', STAGE_NAMES) is None\n"
        "assert render('Fix it.\\n', {'issue': {}}) == 'Fix it.'\n"
        "print('minijinja' in sys.modules)\n"
        "assert render('{{ issue.id }}', {'issue': {'id': 'A'}}) == 'A'\n"
        "print('minijinja' in sys.modules)\n"
    )
    assert fresh_python(code).split() == ["False", "True"]
