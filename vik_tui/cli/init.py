"""`vik-tui init [--runtime codex|claude_code] [DIR]`: a starter project that runs as written."""

from __future__ import annotations

import argparse
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui init",
        description="Write a starter project (workflow.yml, prompts/work.md, issues.json) that runs as written.",
    )
    parser.add_argument("directory", nargs="?", default=".", help="where to write it (default: here)")
    parser.add_argument(
        "--runtime", choices=("codex", "claude_code"), default="codex", help="the agent CLI (default: codex)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    import sys

    from vik_tui.starter import RUNTIMES, InitError, write_starter

    directory = Path(args.directory).expanduser()
    try:
        written = write_starter(directory, args.runtime)
    except InitError as exc:
        print(f"vik-tui init: {exc}", file=sys.stderr)
        return 1
    spec = RUNTIMES[args.runtime]
    workflow = written[0]
    print("\n".join(f"wrote {path}" for path in written))
    print(
        f"next: credentials for `{spec.cli}`: {spec.credentials}\n"
        f"      check with `vik-tui doctor --deep {workflow}`, then run `vik-tui {workflow}`;\n"
        "      replace the pull command with your tracker's (see docs/first-project.md)"
    )
    return 0
