"""The template engine vik uses (MiniJinja, through its Python binding), set up as vik sets it up.

Both the engine (rendering hooks, prompts and the pull command) and doctor (checking them
before anything runs) build their environments here, so a template doctor accepts is one the
engine can render. It lives in `config` because doctor may not import the engine.

vik's settings: MiniJinja 2.19 (the binding is pinned to the version vik is built with), strict
undefined, no Python compatibility methods (`.items()`), one trailing newline dropped. vik hands
templates plain values (`Value::from_serialize` of JSON), so we do too: the context is written
into the template as MiniJinja literals (`vik_literal`) that the engine reads before the
template's own text, never as Python objects. Templates so see vik's values exactly: maps in
sorted key order, lists equal to list literals, `true` / `none` / `["a", "b"]` / `2.0` printed
by MiniJinja itself, vik's `round`; and nothing they do can reach the engine's data (a literal
is a copy, and MiniJinja's own values have no mutating methods). Ours on top: the `shquote`
filter, and a fuel limit so a runaway loop fails instead of hanging the supervisor.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vik_tui.config.render_child import RenderRefused, render_bounded

if TYPE_CHECKING:
    import minijinja

# About 0.4 s of work on a slow machine: far beyond any real prompt, short enough not to stall
# the event loop for long. vik sets no limit (a difference listed in docs/vik-compatibility.md).
FUEL = 10_000_000
# filters of the binding's build that vik's MiniJinja (default features: no `json`, no
# `urlencode`) does not have: a workflow using them here would fail under vik
VIK_LACKS = ("tojson", "urlencode")
TEMPLATE_NAME = "<string>"  # what vik names its templates (and no auto-escaping follows from it)

# What every template may use; `issue` is absent from the pull command's context.
STAGE_NAMES = frozenset({"issue", "workflow_path", "workflow_dir", "workspace_root", "env"})
PULL_NAMES = frozenset({"workflow_path", "workflow_dir", "workspace_root", "env"})


def shquote(value: Any) -> str:
    """Quote tracker text for a POSIX shell, so hooks can embed it safely."""
    return shlex.quote("" if value is None else value if isinstance(value, str) else vik_text(value))


def _float_text(value: float) -> str:
    """`1.0`, `2.5`: a whole float keeps its `.0`, as MiniJinja prints it."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return f"{int(value)}.0"
    return repr(value)


def _nested_text(value: Any) -> str:
    """A value inside a list or map: strings quoted, the rest as at the top level."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return vik_text(value)


def vik_text(value: Any) -> str:
    """How MiniJinja prints a value: `true`, `none`, `["bug", "ui"]`, `{"a": 1}` (keys sorted, as vik's maps)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{_nested_text(k)}: {_nested_text(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_nested_text(item) for item in value) + "]"
    return str(value)


_U64_END = 2**64
_I64_START = -(2**63)


def vik_literal(value: Any) -> str:
    """`value` as a MiniJinja expression that builds the value vik's `from_serialize` would:
    maps with their keys sorted (vik's JSON maps are ordered by key), lists, strings, numbers
    (an integer outside i64/u64 becomes a float, as serde_json reads it), `true`, `none`."""
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value) if _I64_START <= value < _U64_END else _float_literal(_to_float(value))
    if isinstance(value, float):
        return _float_literal(value)
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ", ".join(f"{vik_literal(k)}: {vik_literal(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(vik_literal(item) for item in value) + "]"
    return vik_literal(str(value))


def _to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return "(1e999 - 1e999)"
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def with_context(source: str, context: Mapping[str, Any]) -> str:
    """The template with its context set first, on its first line (so error lines still count
    from the template's own first line)."""
    sets = "".join(f"{{% set {name} = {vik_literal(value)} %}}" for name, value in context.items())
    return sets + source


def plain_text(source: str) -> bool:
    """No template syntax at all (no `{{`, `{%`, `{#`) and valid Unicode: MiniJinja would give
    the text back as it is, less one trailing newline (`rendered_plain`). Such templates (most
    pull commands and prompts) are checked and rendered without loading MiniJinja: 2.6 MiB and a
    few ms of a supervisor's start."""
    if "{{" in source or "{%" in source or "{#" in source:
        return False
    try:
        source.encode("utf-8")
    except UnicodeError:  # a lone surrogate: MiniJinja's error says so
        return False
    return True


def rendered_plain(source: str) -> str:
    """What MiniJinja renders a `plain_text` template to: `keep_trailing_newline=False` drops
    one trailing `\r\n`, `\n` or `\r`."""
    if source.endswith("\r\n"):
        return source[:-2]
    return source[:-1] if source.endswith(("\n", "\r")) else source


def environment() -> minijinja.Environment:
    """A fresh environment with vik's settings and ours (see the module docstring)."""
    import minijinja

    env = minijinja.Environment(
        undefined_behavior="strict",
        keep_trailing_newline=False,
        pycompat=False,
        fuel=FUEL,
    )
    for name in VIK_LACKS:
        env.remove_filter(name)
    env.add_filter("shquote", shquote)
    return env


@functools.cache
def check_env() -> minijinja.Environment:
    """Doctor's environment, made at its first template with syntax in it (`plain_text`)."""
    return environment()


@dataclass(frozen=True)
class TemplateProblem:
    """What is wrong with a template, and on which of its lines (1-based) when that is known."""

    line: int | None
    message: str


def check_template(source: str, names: frozenset[str], *, stage: bool = True) -> TemplateProblem | None:
    """Syntax, and variables no context will have: what doctor can know without rendering.

    `issue.<field>` cannot be checked (tracker fields vary) except `issue.stage` where there is
    no stage (after_create), and `env.<NAME>` depends on the environment the supervisor runs in.
    """
    if plain_text(source):
        return None  # no names, no filters, nothing to get wrong
    import minijinja

    try:
        top = check_env().undeclared_variables_in_str(source)
        nested = check_env().undeclared_variables_in_str(source, nested=True)
    except minijinja.TemplateError as exc:
        return TemplateProblem(exc.line, f"template syntax error: {exc.detail or exc.message}")
    except UnicodeError:  # a lone surrogate from a broken YAML escape
        return TemplateProblem(None, "template text is not valid Unicode")
    unknown = _unknown_filter_or_test(source)
    if unknown is not None:
        return unknown
    for name in sorted(top - names):
        if not _is_global(name):
            return TemplateProblem(_line_of(source, name), f"undefined variable `{name}`{_known_hint(name, names)}")
    if not stage and "issue.stage" in nested and _fails_only_without_stage(source, nested):
        return TemplateProblem(
            _line_of(source, r"issue\s*\.\s*stage"),
            "`issue.stage` is undefined in after_create (it runs once per issue, before any stage);"
            " guard it (`is defined`, `| default(...)`) or move it to a stage's hook",
        )
    return None


_STRING = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'""")
_FILTER = re.compile(r"\|\s*([A-Za-z_]\w*)")
_TEST = re.compile(r"\bis\s+(?:not\s+)?([A-Za-z_]\w*)")


def _unknown_filter_or_test(source: str) -> TemplateProblem | None:
    """A filter or test no environment has (`| shqoute`): MiniJinja finds it only when it
    renders, so every stage would fail at its hook; doctor finds it here, with its line."""
    import minijinja

    for block in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", source, re.DOTALL):
        code = _STRING.sub('""', block.group(0))
        for kind, regex, probe in (("filter", _FILTER, "none | {}"), ("test", _TEST, "none is {}")):
            for found in regex.finditer(code):
                name = found.group(1)
                if kind == "test" and name in ("not", "defined", "undefined", "none"):
                    continue
                try:
                    check_env().eval_expr(probe.format(name))
                except minijinja.TemplateError as exc:
                    if exc.kind not in ("UnknownFilter", "UnknownTest"):
                        continue  # known, only not for this probe's arguments
                    line = source.count("\n", 0, block.start()) + code.count("\n", 0, found.start()) + 1
                    hint = "; did you mean `shquote`?" if kind == "filter" and _close(name, "shquote") else ""
                    return TemplateProblem(line, f"unknown {kind} `{name}`{hint}")
    return None


_OUTCOME_COMPARED = re.compile(r"issue\s*\.\s*outcome\b(?!\s*\.)")


def outcome_compared(source: str) -> int | None:
    """The line where an `after_run` template uses `issue.outcome` as the string it was
    (`{{ issue.outcome }}`, `== "completed"`): it is the outcome map now, whose `.state` is that
    string (templates get plain values, so no object can print as the old string)."""
    for block in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", source, re.DOTALL):
        found = _OUTCOME_COMPARED.search(_STRING.sub('""', block.group(0)))
        if found:
            return source.count("\n", 0, block.start() + found.start()) + 1
    return None


def _close(word: str, known: str) -> bool:
    from difflib import SequenceMatcher

    return word != known and SequenceMatcher(None, word, known).ratio() > 0.7


def _fails_only_without_stage(source: str, nested: set[str]) -> bool:
    """Whether after_create really reads `issue.stage` (vik runs a guarded use: `is defined`,
    `| default(...)`, a branch that never runs): rendered with a stand-in for every name it
    uses, it fails without `issue.stage` and renders with it. A template whose render depends
    on the tracker's data (it fails either way) is not judged. Rendered in a child process with
    bounded memory (`render_child`): doctor runs in the supervisor too, on every reload."""
    check_env()  # made here, not again in each child
    try:
        return render_bounded(lambda: "yes" if _fails_here(source, nested) else "", ()) == "yes"
    except RenderRefused:
        return False


def _fails_here(source: str, nested: set[str]) -> bool:
    import minijinja

    try:
        check_env().render_str(source, TEMPLATE_NAME, **_stand_ins(nested, with_stage=True))
    except Exception:
        return False
    try:
        check_env().render_str(source, TEMPLATE_NAME, **_stand_ins(nested, with_stage=False))
    except minijinja.TemplateError:
        return True
    return False


def _stand_ins(nested: set[str], *, with_stage: bool) -> dict[str, Any]:
    """`{"issue": {"title": "x", ...}, ...}` from dotted names such as `issue.title`."""
    root: dict[str, Any] = {}
    for dotted in sorted(nested, key=len):
        *parents, last = dotted.split(".")
        node = root
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node.setdefault(last, "x")
    issue = root.get("issue")
    issue = root["issue"] = issue if isinstance(issue, dict) else {}
    if with_stage:
        issue["stage"] = "x"
    else:
        issue.pop("stage", None)
    return root


def _is_global(name: str) -> bool:
    """A MiniJinja global such as `range`, `dict` or `namespace`."""
    import minijinja

    try:
        return bool(check_env().eval_expr(f"{name} is defined"))
    except minijinja.TemplateError:
        return False


def _known_hint(name: str, names: frozenset[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(name, sorted(names), n=1)
    available = ", ".join(sorted(names))
    return f"; did you mean `{close[0]}`?" if close else f" (available: {available})"


def _line_of(source: str, pattern: str) -> int | None:
    """The first line where `pattern` appears as a name inside a `{{ }}` or `{% %}` block."""
    regex = re.compile(r"(?<![\w.])" + (pattern if "\\" in pattern else re.escape(pattern)) + r"(?!\w)")
    for block in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", source, re.DOTALL):
        found = regex.search(block.group(0))
        if found:
            return source.count("\n", 0, block.start() + found.start()) + 1
    return None
