"""vik's lifecycle commands on a workflow's supervisor: `status`, `stop [--drain]`, `restart`,
`uninstall`, with vik's wording and exit codes (vik_compare §7)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vik_tui.cli.common import DEFAULT_WORKFLOW, api_options, listen, load_or_report

if TYPE_CHECKING:
    from pathlib import Path

LIFECYCLE = {
    "status": "Say whether a supervisor of the workflow is running (from its service/state.json).",
    "stop": "Stop the workflow's supervisor: SIGTERM, then wait until its agents are stopped and it exits.",
    "restart": "Stop the workflow's supervisor if one runs, then start it again detached (run -d).",
    "uninstall": "Stop the workflow's supervisor if one runs and remove its state file.",
}


def parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"vik-tui {command}", description=LIFECYCLE[command])
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    if command == "restart":  # vik's restart takes the new daemon's API options
        api_options(parser)
    if command == "stop":
        parser.add_argument(
            "--drain",
            action="store_true",
            help="start nothing new, let running stages finish, then exit (a plain `stop` later ends it at once)",
        )
    return parser


def main(command: str, argv: list[str]) -> int:
    args = parser(command).parse_args(argv)
    if getattr(args, "drain", False):
        return drain(args.workflow)
    return lifecycle(command, args.workflow, args)


def lifecycle(command: str, workflow_path: str, args: argparse.Namespace | None = None) -> int:
    from vik_tui.engine.service import daemon
    from vik_tui.engine.service.paths import Layout

    result, code = load_or_report(workflow_path, quiet=True)
    if result is None or result.workflow is None:
        return code
    state_file = Layout.for_workflow(result.workflow, result.path).state_file
    try:
        if command == "status":
            print("\n".join(daemon.status_lines(state_file)))
        elif command == "stop":
            if not daemon.stop(state_file):
                raise daemon.LifecycleError(f"no daemon state file for {state_file}")
            print("daemon stopped")
        elif command == "uninstall":
            daemon.stop_if_running(state_file)
            print("daemon uninstalled (state file removed if present)")
        else:  # restart
            from vik_tui.cli.run import run_detached

            api = restart_api(args or argparse.Namespace(port=None), state_file)
            stopped = daemon.stop_if_running(state_file)
            print("daemon stopped; starting a fresh one" if stopped else "no daemon was running; starting one")
            sys.stdout.flush()
            tcp, code = listen(api, "restart")  # the old daemon's port is free now
            if code:
                return code
            return run_detached(workflow_path, as_json=False, watch=True, verb="restart", tcp=tcp, api=api)
    except (daemon.LifecycleError, OSError) as exc:
        print(f"vik-tui {command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def restart_api(args: argparse.Namespace, state_file: Path) -> argparse.Namespace:
    """The new daemon's `--port` / `--bind-address`: those given to `restart` (vik's), else the
    running daemon's (from its state.json), so a restart keeps the API where clients find it."""
    from vik_tui.api.endpoint import is_loopback
    from vik_tui.engine.service import daemon

    if args.port is not None:
        return args
    try:
        state = daemon.read_state(state_file)
    except daemon.LifecycleError:
        state = None
    if state is None or not state.port:
        return args
    allow = bool(getattr(args, "allow_remote", False)) or not is_loopback(state.bind_address)  # allowed when it started
    return argparse.Namespace(port=state.port, bind_address=state.bind_address, allow_remote=allow)


def drain(workflow_path: str) -> int:
    """`stop --drain`: ask the running supervisor (over service/api.sock) to drain."""
    from vik_tui.api.ask import NotServing, ask
    from vik_tui.api.routes import url_for
    from vik_tui.engine.service.paths import Layout

    result, code = load_or_report(workflow_path, quiet=True)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)
    try:
        status, body = ask(layout.api_socket, "POST", url_for("drain"), {})
    except NotServing:
        print(f"vik-tui stop --drain: no supervisor of {result.path} is running", file=sys.stderr)
        return 1
    if status >= 400:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        print(f"vik-tui stop --drain: {message or f'HTTP {status}'}", file=sys.stderr)
        return 1
    print(f"{body['message']} (`vik-tui stop` ends it at once, resume in the UI cancels it)")
    return 0
