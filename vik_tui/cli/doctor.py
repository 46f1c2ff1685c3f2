"""`vik-tui doctor [--strict] [--json] [--deep] [WORKFLOW]`: check a workflow and explain every
problem; `--deep` also pulls the tracker once and checks every SSH host."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vik_tui.cli.common import DEFAULT_WORKFLOW

if TYPE_CHECKING:
    from vik_tui.config.diagnostics import Diagnostic
    from vik_tui.config.loader import LoadResult


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui doctor", description="Check a workflow.yml and explain every problem."
    )
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--strict", action="store_true", help="warnings also fail (exit 1)")
    parser.add_argument("--json", action="store_true", help='print {"errors": [...], "warnings": [...]}')
    parser.add_argument("--deep", action="store_true", help="also run the pull command once and check its issues")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from vik_tui.config.doctor import run_doctor

    def deep(result: LoadResult) -> list[Diagnostic]:  # the tracker, then every SSH host
        from vik_tui.engine.intake import pull_check
        from vik_tui.engine.places.host_checks import hosts_check

        return pull_check(result) + hosts_check(result)

    return run_doctor(args.workflow, args.strict, args.json, sys.stdout, deep=deep if args.deep else None)
