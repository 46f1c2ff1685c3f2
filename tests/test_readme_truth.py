"""The README (and docs/) stay true: every `vik-tui …` command they show exists with the flags
shown, the key table is the app's real key map (both ways), every relative link leads to a file
(and heading) that exists, every agent flag a YAML example passes to Codex or Claude Code is one
the real CLI's `--help` lists, and the test command is the one `.ci/run` runs.

The CLIs' help is captured in tests/data/cli-help/ (Codex 0.169.0 `codex exec --help`, Claude
Code 2.1.197 `claude --help`): a newcomer's first copied workflow must not die on an
`unexpected argument`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
CLI_HELP = Path(__file__).parent / "data" / "cli-help"
HELP_FILES = {
    "codex": CLI_HELP / "codex-0.169.0-exec-help.txt",
    "claude_code": CLI_HELP / "claude-2.1.197-help.txt",
}

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"``(.+?)``|`([^`\n]+)`")
SHELL_LANGS = {"sh", "bash", "shell", "console", ""}


# -- reading markdown --------------------------------------------------------------------------
def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def inline_spans(text: str) -> list[str]:
    return [a or b for a, b in INLINE_CODE.findall(prose(text))]


# -- 1. commands and flags ----------------------------------------------------------------------
def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: not a shell line this test can read
        return []


def vik_commands(line: str) -> Iterator[list[str]]:
    """Each `vik-tui …` invocation in one shell line (also inside quotes, as in tmux's
    `'vik-tui workflow.yml'`), as its words after `vik-tui`, up to the next shell operator."""
    words = [w.replace("[", "").replace("]", "") for w in _words(line)]
    for i, word in enumerate(words):
        if " " in word and "vik-tui" in word:
            yield from vik_commands(word)
        elif word.rsplit("/", 1)[-1] == "vik-tui":
            rest: list[str] = []
            for w in words[i + 1 :]:
                if w and set(w) <= set(";&|<>()"):
                    break
                if w:
                    rest.append(w)
            yield rest


def shown_commands(text: str) -> list[list[str]]:
    """Every vik-tui command in the text's shell blocks and inline code."""
    lines = [line for lang, body in fenced_blocks(text) if lang in SHELL_LANGS for line in body.splitlines()]
    lines += [span for span in inline_spans(text) if re.match(r"(\S*/)?vik-tui(\s|$)", span)]
    return [cmd for line in lines for cmd in vik_commands(line)]


def _vik_tui() -> list[str]:
    script = Path(sys.executable).parent / "vik-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vik_tui"]


@cache
def cli_help(sub: str) -> str:
    """`vik-tui [SUB] --help`, run for real; a subcommand that does not exist fails here."""
    argv = [*_vik_tui(), *([sub] if sub else []), "--help"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}"
    usage = f"usage: vik-tui {sub}".rstrip()
    assert proc.stdout.startswith(usage), (
        f"`vik-tui {sub}` is shown as a subcommand, but `vik-tui {sub} --help` is not its help:"
        f" {proc.stdout.splitlines()[:1]}"
    )
    return proc.stdout


def split_command(words: list[str]) -> tuple[str, list[str]]:
    """(subcommand or "" for the UI, the flags shown). A first plain lower-case word is a
    subcommand; a path (`workflow.yml`, `~/w/x.yml`) or a placeholder (`WORKFLOW`) is not."""
    positional = [w for w in words if not w.startswith("-")]
    sub = positional[0] if positional and re.fullmatch(r"[a-z][a-z-]*", positional[0]) else ""
    flags = [w.split("=", 1)[0].rstrip(".,;:") for w in words if w.startswith("-") and len(w) > 1]
    return sub, flags


def flag_in_help(flag: str, help_text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def command_problems(text: str) -> list[str]:
    problems = []
    for words in shown_commands(text):
        sub, flags = split_command(words)
        try:
            help_text = cli_help(sub)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        problems += [
            f"`vik-tui {' '.join(words)}`: {flag} is not in `vik-tui {sub} --help`".replace("  ", " ")
            for flag in flags
            if not flag_in_help(flag, help_text)
        ]
    return problems


def test_readme_shows_commands() -> None:
    """The parser finds the commands (a parser that finds none would make the next test vacuous)."""
    subs = {split_command(words)[0] for words in shown_commands(README.read_text())}
    assert {"", "demo", "doctor", "run", "status"} <= subs, subs


def test_every_vik_tui_command_in_readme_and_docs_exists_with_its_flags() -> None:
    problems = [f"{path.name}: {p}" for path in [README, *DOCS] for p in command_problems(path.read_text())]
    assert not problems, "\n".join(problems)


def test_a_made_up_flag_or_subcommand_is_caught() -> None:
    assert command_problems("```sh\nvik-tui doctor --deep --no-such-flag workflow.yml\n```\n") == [
        "`vik-tui doctor --deep --no-such-flag workflow.yml`: --no-such-flag is not in `vik-tui doctor --help`"
    ]
    [problem] = command_problems("run `vik-tui frobnicate --dir x` first")
    assert "vik-tui frobnicate" in problem


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """README's "Run the tests" block is byte for byte the commands .ci/run runs (its comment
    says to keep them in step)."""
    ci = (ROOT / ".ci" / "run").read_text()
    install = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"
    pytest_cmd = ".venv/bin/python -m pytest -q"
    statics = re.findall(r'^static_check "[^"]+" (\S+(?: [^#\n]*?)?)\s*(?:#.*)?$', ci, re.M)
    assert install in ci and pytest_cmd in ci and len(statics) == 4, statics
    expected = f"{install} && {pytest_cmd}\n" + " && ".join(s.strip() for s in statics) + "\n"
    blocks = [body for lang, body in fenced_blocks(README.read_text()) if lang == "sh"]
    assert expected in blocks, f"README has no block reading exactly:\n{expected}"
    demo = "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/vik-tui demo\n"
    assert blocks[0] == demo, "the first command in the README is the demo"


# -- 2. keys ------------------------------------------------------------------------------------
GLYPHS = {"↑": "up", "↓": "down", "?": "question_mark", "!": "exclamation_mark", "/": "slash", "esc": "escape"}


def readme_keys(text: str) -> set[str]:
    """The keys in the first column of the table under `## Keys`."""
    section = re.search(r"^## Keys\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "no `## Keys` section"
    keys = set()
    for cell in re.findall(r"^\|([^|]+)\|.*\|\s*$", section.group(1), re.M):
        keys |= {GLYPHS.get(span, span) for span in re.findall(r"`([^`]+)`", cell)}
    return keys


def app_keys() -> set[str]:
    """Every key the main screen answers: its bindings (vik_tui/ui/keys.py), plus what the
    issue list (a DataTable) and the app give it: enter, the arrows, the command palette."""
    from textual.widgets import DataTable

    from vik_tui.ui.app import VikApp
    from vik_tui.ui.screens.main import MainScreen

    keys = set()
    for binding in MainScreen.BINDINGS:
        assert not isinstance(binding, tuple), binding
        keys |= {k.strip() for k in binding.key.split(",")}
    from_list = {("enter", "select_cursor"), ("up", "cursor_up"), ("down", "cursor_down")}
    keys |= {b.key for b in DataTable.BINDINGS if not isinstance(b, tuple) and (b.key, b.action) in from_list}
    if VikApp.ENABLE_COMMAND_PALETTE:
        keys.add(VikApp.COMMAND_PALETTE_BINDING)
    return keys


def key_problems(text: str) -> list[str]:
    shown, real = readme_keys(text), app_keys()
    return [f"the key table shows `{k}`, which the app does not bind" for k in sorted(shown - real)] + [
        f"the app binds `{k}`, which the key table does not show" for k in sorted(real - shown)
    ]


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "command-line.md"], ids=lambda p: p.name)
def test_key_tables_are_the_apps_key_map(path: Path) -> None:
    problems = key_problems(path.read_text())
    assert not problems, "\n".join(problems)


def test_a_wrong_or_missing_key_is_caught() -> None:
    text = README.read_text()
    wrong = text.replace("| `d` | the workspace's `git diff` |", "| `g` | the workspace's `git diff` |")
    assert wrong != text
    assert key_problems(wrong) == [
        "the key table shows `g`, which the app does not bind",
        "the app binds `d`, which the key table does not show",
    ]


# -- 3. links -----------------------------------------------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", prose(path.read_text()), re.M)}


def link_problems(path: Path, text: str) -> list[str]:
    problems = []
    for target in LINK.findall(re.sub(INLINE_CODE, "", prose(text))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.name}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: link to {target}: no heading `#{anchor}` in {dest.name}")
    return problems


def test_every_relative_link_in_readme_and_docs_leads_somewhere() -> None:
    problems = [p for path in [README, *DOCS] for p in link_problems(path, path.read_text())]
    assert not problems, "\n".join(problems)


def test_a_broken_link_is_caught() -> None:
    text = "[a](docs/nowhere.md) [b](docs/configuration.md#no-such-heading) [c](docs/configuration.md#hot-reload)"
    assert link_problems(README, text) == [
        "README.md: link to docs/nowhere.md: no such file",
        "README.md: link to docs/configuration.md#no-such-heading: no heading `#no-such-heading` in configuration.md",
    ]


# -- 4. the agents' flags against the real CLIs' --help -----------------------------------------
def cli_options(help_text: str) -> dict[str, set[str] | None]:
    """Each option the help lists -> the values it allows (None: any)."""
    options: dict[str, set[str] | None] = {}
    current: list[str] = []
    block: list[str] = []

    def close() -> None:
        described = " ".join(block)
        found = re.search(r"\[possible values: ([^\]]+)\]", described) or re.search(r"\(choices: ([^)]+)\)", described)
        values = {v.strip().strip('"') for v in found.group(1).split(",")} if found else None
        for flag in current:
            options[flag] = values

    for line in help_text.splitlines():
        if re.match(r"^ {2,6}-", line):
            close()
            head = re.split(r"\s{2,}", line.strip())[0]
            current, block = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", head), [line]
        elif line.strip() and not line.startswith(" "):  # a section title (Commands:, Arguments:)
            close()
            current, block = [], []
        else:
            block.append(line)
    close()
    return options


def example_agents(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(block number, agent) for every agent in the text's YAML blocks."""
    for number, (lang, body) in enumerate(fenced_blocks(text), 1):
        if lang not in {"yaml", "yml"}:
            continue
        try:
            doc = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise AssertionError(f"YAML block {number} does not parse: {exc}") from None
        agents = doc.get("agents") if isinstance(doc, dict) else None
        for agent in (agents or {}).values():
            if isinstance(agent, dict):
                yield number, agent


def argv_problems(runtime: str, args: dict[str, Any], model: str = "m") -> list[str]:
    """Every flag in the command line vik-tui builds for this agent, checked against the CLI's
    captured help: its own (`--json`, `-p`, …) and the `args:` it forwards."""
    from vik_tui.agents import claude_code, codex
    from vik_tui.config.schema import AgentConfig

    build = {"codex": codex.build_command, "claude_code": claude_code.build_command}[runtime]
    argv = build(AgentConfig(runtime=runtime, model=model, args=args))
    options = cli_options(HELP_FILES[runtime].read_text())
    problems = [
        f"{runtime}: {word} is not an option of {HELP_FILES[runtime].name}"
        for word in argv[1:]
        if word.startswith("-") and word not in options
    ]
    for key, value in args.items():
        allowed = options.get(key)
        if allowed is not None and isinstance(value, str) and value not in allowed:
            problems.append(f"{runtime}: {key} {value}: not one of {sorted(allowed)}")
    return problems


def agent_problems(path: Path) -> list[str]:
    problems = []
    for number, agent in example_agents(path.read_text()):
        runtime = agent.get("runtime")
        if runtime in HELP_FILES:
            args = agent.get("args") or {}
            problems += [f"{path.name}, YAML block {number}: {p}" for p in argv_problems(runtime, args)]
    return problems


def test_readme_shows_codex_and_claude_examples() -> None:
    runtimes = {agent.get("runtime") for _n, agent in example_agents(README.read_text())}
    assert {"codex", "claude_code"} <= runtimes


def test_every_agent_flag_in_readme_and_docs_is_one_the_real_cli_has() -> None:
    problems = [p for path in [README, *DOCS] for p in agent_problems(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("runtime", "args", "problem"),
    [
        ("codex", {"--sandbox": "workspace-write", "--full-auto": True}, "codex: --full-auto is not an option"),
        ("codex", {"--sandbox": "workspace-writable"}, "codex: --sandbox workspace-writable: not one of"),
        ("claude_code", {"--max-turnz": 3}, "claude_code: --max-turnz is not an option"),
        ("claude_code", {"--permission-mode": "yolo"}, "claude_code: --permission-mode yolo: not one of"),
    ],
)
def test_a_flag_the_cli_does_not_have_is_caught(runtime: str, args: dict[str, Any], problem: str) -> None:
    problems = argv_problems(runtime, args)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_the_captured_help_is_read() -> None:
    """The parser sees the options a first workflow needs (an empty parse would pass every flag)."""
    codex_opts = cli_options(HELP_FILES["codex"].read_text())
    claude_opts = cli_options(HELP_FILES["claude_code"].read_text())
    assert codex_opts["--sandbox"] == {"read-only", "workspace-write", "danger-full-access"}
    assert {"--json", "-m", "--skip-git-repo-check", "-c"} <= codex_opts.keys()
    assert "--full-auto" not in codex_opts
    assert claude_opts["--permission-mode"] == {
        "acceptEdits",
        "auto",
        "bypassPermissions",
        "default",
        "dontAsk",
        "plan",
    }
    assert {"-p", "--verbose", "--output-format", "--model", "--allowedTools", "--resume"} <= claude_opts.keys()


# -- 5. the first workflow works as written -----------------------------------------------------
def write_first_workflow(root: Path) -> dict[str, str]:
    """The hand-written first workflow, its issues.json and its prompt, written out as the README
    shows them, with a `codex` on PATH that is the fake one; returns the environment to run in."""
    blocks = fenced_blocks(README.read_text())
    workflow = next(body for lang, body in blocks if lang == "yaml" and "issues:" in body)
    issues = next(body for lang, body in blocks if lang == "json")
    prompt = next(body for lang, body in blocks if lang == "" and "{{ issue.id }}" in body)
    (root / "workflow.yml").write_text(workflow)
    (root / "issues.json").write_text(issues)
    (root / "prompts").mkdir()
    (root / "prompts" / "implement.md").write_text(prompt)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "codex").symlink_to(Path(__file__).parent / "fakes" / "fake_codex")
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(root)}


def test_readme_first_workflow_passes_doctor_deep(tmp_path: Path) -> None:
    env = write_first_workflow(tmp_path)
    argv = [*_vik_tui(), "doctor", "--deep", "--strict", "workflow.yml"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_first_workflow_runs_its_stage_to_completed(tmp_path: Path) -> None:
    """One intake cycle of the README's workflow as written (plus `loop.max_iterations: 1`): the
    hooks run in a fresh git workspace, the agent gets the flags shown, the stage completes."""
    env = write_first_workflow(tmp_path)
    workflow = tmp_path / "workflow.yml"
    workflow.write_text(workflow.read_text() + "loop: {max_iterations: 1}\n")
    argv = [*_vik_tui(), "run", "--json", "workflow.yml"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "stage_finished"]
    assert [(e["issue"], e["stage"], e["state"]) for e in finished] == [("T-1", "implement", "completed")], finished
    hooks = {e["hook"]: e["ok"] for e in events if e["event"] == "hook_finished"}
    assert hooks == {"after_create": True, "after_run": True}, hooks
