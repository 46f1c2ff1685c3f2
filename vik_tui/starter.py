"""`vik-tui init`: a starter project that runs as written with the real agent CLIs.

It writes workflow.yml, prompts/work.md and issues.json (a local tracker to start with). Every
`args:` flag here exists in the CLI versions named below; tests/test_init.py checks them against
the captured `--help` texts in tests/data/cli-help/, so a flag a newer CLI drops is seen here
first (Codex 0.169 refuses `--full-auto`, for one). Nothing is ever overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WORKFLOW_FILE = "workflow.yml"
PROMPT_FILE = "prompts/work.md"
ISSUES_FILE = "issues.json"


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the starter writes for one agent runtime."""

    name: str
    cli: str  # the executable vik-tui runs
    version: str  # the CLI version the flags were checked against
    model: str
    args: dict[str, str]  # flag -> value, forwarded as written
    credentials: str  # one comment line: where the CLI gets its credentials


RUNTIMES: dict[str, Runtime] = {
    "codex": Runtime(
        name="codex",
        cli="codex",
        version="0.169.0",
        model="gpt-5.5",
        # the workspace is a git repository (after_create), so no --skip-git-repo-check is needed
        args={"--sandbox": "workspace-write"},
        credentials=(
            "`codex login` once, or `printenv OPENAI_API_KEY | codex login --with-api-key`;"
            " kept in $CODEX_HOME (default ~/.codex)"
        ),
    ),
    "claude_code": Runtime(
        name="claude_code",
        cli="claude",
        version="2.1.197",
        model="sonnet",
        # acceptEdits: file edits without asking; `bypassPermissions` also runs any command unasked
        args={"--permission-mode": "acceptEdits"},
        credentials="`claude` then /login once, or ANTHROPIC_API_KEY in vik-tui's environment",
    ),
}

_WORKFLOW = """\
# A starter workflow written by `vik-tui init` for {cli} {version}.
# Credentials: {credentials}.
# Next: replace the pull command with your tracker's (docs/first-project.md has `gh` and Linear
# examples), check with `vik-tui doctor --deep`, then run `vik-tui` (or `vik-tui run` headless).

loop:
  max_issue_concurrency: 2     # issues worked on at once

agents:
  {agent}:
    runtime: {runtime}
    model: {model}
    args:                      # forwarded to `{cli}` as written
{args}

issues:
  pull:
    # One JSON array of {{"id", "title", "state", "description"}}, run from this directory.
    command: cat {issues}
    idle_sec: 5

issue:
  hooks:
    # Runs once, in the new empty workspace of an issue. For your own code, use instead:
    #   git clone --depth 1 https://github.com/OWNER/REPO.git .
    after_create: >-
      git init -q . &&
      git -c user.name=vik-tui -c user.email=vik-tui@localhost
      commit -q --allow-empty -m "workspace for {{{{ issue.id }}}}"
  stages:
    work:
      when:
        state: todo            # exact and case-sensitive, as your tracker spells it
      agent: {agent}
      prompt_file: {prompt}
      hooks:
        after_run: >-
          git add -A &&
          git -c user.name=vik-tui -c user.email=vik-tui@localhost
          commit -q -m {{{{ issue.title | shquote }}}} || true
"""

_PROMPT = """\
You are working on issue {{ issue.id }}: {{ issue.title }}

{{ issue.description }}

Work in the current directory, a git repository made for this issue. Keep the change small,
run whatever tests exist, and end with a short summary of what you changed and why.
"""

_ISSUES = [
    {
        "id": "FIRST-1",
        "title": "Add a hello script",
        "state": "todo",
        "description": "Add hello.py that prints 'hello from vik-tui' and a README line saying how to run it.",
    },
]


class InitError(Exception):
    """Why `init` wrote nothing (a file would be overwritten, or the directory is unusable)."""


def starter_files(runtime: str) -> dict[str, str]:
    """The files of a starter project for `runtime`, by path relative to the project."""
    spec = RUNTIMES[runtime]
    args = "\n".join(f"      {flag}: {value}" for flag, value in spec.args.items())
    workflow = _WORKFLOW.format(
        cli=spec.cli,
        version=spec.version,
        credentials=spec.credentials,
        agent=spec.cli,
        runtime=spec.name,
        model=spec.model,
        args=args,
        issues=ISSUES_FILE,
        prompt=PROMPT_FILE,
    )
    return {
        WORKFLOW_FILE: workflow,
        PROMPT_FILE: _PROMPT,
        ISSUES_FILE: json.dumps(_ISSUES, indent=2) + "\n",
    }


def write_starter(directory: Path, runtime: str) -> list[Path]:
    """Write the starter into `directory` (made if missing); refuse before writing anything when
    one of its files exists. Returns the paths written."""
    files = starter_files(runtime)
    existing = [directory / name for name in files if (directory / name).exists()]
    if existing:
        names = ", ".join(str(path) for path in existing)
        raise InitError(f"{names} already exist{'s' if len(existing) == 1 else ''}; nothing was written")
    written = []
    try:
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:  # "x": never replace a file made meanwhile
                handle.write(text)
            written.append(path)
    except OSError as exc:
        raise InitError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
    return written
