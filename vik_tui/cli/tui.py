"""The UI: `vik-tui [WORKFLOW]` (attached to the workflow's supervisor when one runs, else with
the engine in-process, serving the API) and `vik-tui attach [WORKFLOW | URL]`. The only
commands that load Textual, and only once they know they will draw."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vik_tui import __version__
from vik_tui.cli.common import DEFAULT_WORKFLOW, api_options, listen, no_terminal

if TYPE_CHECKING:
    import socket

    from vik_tui.api.target import ApiTarget


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui",
        description="Supervise coding agents working through tracker issues.",
        epilog=(
            "subcommands: run [-d] [--json] [WORKFLOW] | attach [WORKFLOW | URL] | status | stop [--drain]"
            " | restart | uninstall [WORKFLOW] | explain ID [WORKFLOW] | web [WORKFLOW] [--port N]"
            " | doctor [--strict] [--json] [--deep] [WORKFLOW] | demo [--dir DIR] [--headless]"
            " | init [--runtime codex|claude_code] [DIR]"
        ),
    )
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--version", action="version", version=f"vik-tui {__version__}")
    parser.add_argument("--no-watch", action="store_true", help="do not hot-reload workflow.yml and prompt files")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell when a stage fails")
    api_options(parser)
    return parser


def attach_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui attach",
        description=(
            "Attach the UI to a running supervisor (`run -d`, `run`, or another terminal's UI):"
            " q detaches and its agents keep running; Q stops it (asks first)."
        ),
    )
    parser.add_argument(
        "target", nargs="?", default=DEFAULT_WORKFLOW, help="a workflow file, or http://HOST:PORT (with a token)"
    )
    parser.add_argument("--token", default=None, help="the TCP API's token (else $VIK_TUI_TOKEN; see `vik-tui status`)")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell when a stage completes or fails")
    return parser


def main(argv: list[str]) -> int:
    """`vik-tui [WORKFLOW]`."""
    args = parser().parse_args(argv)
    refusal = no_workflow(args.workflow) or no_terminal(f"vik-tui run {args.workflow}")
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    tcp, code = listen(args, "")
    if code:
        return code
    return tui(args.workflow, watch=not args.no_watch, bell=not args.no_bell, tcp=tcp)


def attach_main(argv: list[str]) -> int:
    args = attach_parser().parse_args(_token_joined(argv))
    return attach(args.target, args.token, bell=not args.no_bell)


def _token_joined(argv: list[str]) -> list[str]:
    """`--token VALUE` as `--token=VALUE`: a token made before tokens were hex may begin with
    `-`, which argparse would take for an option."""
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        joined.append(f"--token={next(values, '')}" if arg == "--token" else arg)
    return joined


def no_workflow(workflow_path: str) -> str | None:
    """`vik-tui` where there is no workflow yet: say how to get one rather than only "not found"."""
    if Path(workflow_path).expanduser().exists():
        return None
    return (
        f"vik-tui: no workflow at {workflow_path}: create a starter project with `vik-tui init`"
        " (then edit its pull command), or see one running with `vik-tui demo`"
    )


def tui(workflow_path: str, watch: bool, bell: bool = True, tcp: socket.socket | None = None) -> int:
    """The UI: attached to the workflow's supervisor when one runs, else with the engine
    in-process (serving the API, so another terminal can attach to it)."""
    try:
        from vik_tui.ui.app import run_app
    except ImportError as exc:  # pragma: no cover - only when the UI is not installed
        print(f"vik-tui: the terminal UI is unavailable ({exc}); use `vik-tui run --headless`", file=sys.stderr)
        return 1
    found = running_supervisor(workflow_path)
    if isinstance(found, int):
        return found
    if found is not None:
        if tcp is not None:
            tcp.close()
        return run_attached(found, bell)
    return run_app(workflow_path, watch=watch, bell=bell, prepare=lambda engine: serve_local_engine(engine, tcp))


def serve_local_engine(engine: object, tcp: socket.socket | None) -> None:
    """The UI's local engine is the Supervisor: it serves the API like every supervisor."""
    from vik_tui.cli.run import serve_api
    from vik_tui.engine.supervisor import Supervisor

    if isinstance(engine, Supervisor):
        serve_api(engine, tcp)


def running_supervisor(workflow_path: str) -> ApiTarget | int | None:
    """The API of the live supervisor of this workflow, None when none runs (or the workflow
    cannot be read: the in-process path shows its diagnostics), or an exit code after a message."""
    from vik_tui.api.target import TargetError, live_supervisor
    from vik_tui.config.loader import load_workflow
    from vik_tui.engine.service.paths import Layout

    result = load_workflow(workflow_path)
    if not result.ok or result.workflow is None:
        return None
    try:
        return live_supervisor(Layout.for_workflow(result.workflow, result.path))
    except (TargetError, OSError) as exc:
        print(f"vik-tui: {exc}", file=sys.stderr)
        return 1


def attach(target: str, token: str | None, bell: bool) -> int:
    """`vik-tui attach [WORKFLOW | URL]`: never starts a supervisor."""
    from vik_tui.api.target import TargetError, from_url

    try:
        if target.startswith(("http://", "https://")):
            found: ApiTarget | int | None = from_url(target, token or os.environ.get("VIK_TUI_TOKEN"))
        else:
            if not Path(target).is_file():
                print(f"vik-tui attach: no workflow file at {target} (or give http://HOST:PORT)", file=sys.stderr)
                return 2
            found = running_supervisor(target)
            if found is None:
                print(
                    f"vik-tui attach: no supervisor of {target} is running; start one with"
                    f" `vik-tui run -d {target}` (or `vik-tui {target}` runs it in this terminal)",
                    file=sys.stderr,
                )
                return 1
    except TargetError as exc:
        print(f"vik-tui attach: {exc}", file=sys.stderr)
        return 2
    if isinstance(found, int) or found is None:
        return found or 1
    return run_attached(found, bell)


def run_attached(target: ApiTarget, bell: bool) -> int:
    import asyncio

    from vik_tui.api.attached import AttachedEngine, probe
    from vik_tui.ui.app import run_engine_app

    problem = asyncio.run(probe(target))
    if problem is not None:
        print(f"vik-tui attach: {problem}", file=sys.stderr)
        return 1
    refusal = no_terminal(f"vik-tui status {target.workflow_path or ''}".strip())
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    return run_engine_app(AttachedEngine(target), bell=bell)
