"""`vik-tui run [-d]`: the supervisor without a UI, in the foreground (as `vik run`) or detached,
serving the HTTP API. Loads the engine, never Textual; the API's server code waits for its
first client (`api.front`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vik_tui.cli.common import DEFAULT_WORKFLOW, api_options, command_line, listen, load_or_report

if TYPE_CHECKING:
    import socket

    from vik_tui.config.loader import LoadResult
    from vik_tui.engine.engine_events import EngineEvent, Listener
    from vik_tui.engine.supervisor import Supervisor

    ListenerFactory = Callable[[Supervisor], Listener]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui run",
        description="Run a workflow without the UI, in the foreground (as `vik run`), or detached with -d.",
    )
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("-d", "--detach", action="store_true", help="run as a daemon; see status, stop, restart")
    parser.add_argument("--headless", action="store_true", help="accepted for compatibility: `run` is always headless")
    parser.add_argument("--json", action="store_true", help="JSON Lines of engine events instead of readable lines")
    parser.add_argument("--no-watch", action="store_true", help="do not hot-reload workflow.yml and prompt files")
    parser.add_argument("--no-bell", action="store_true", help=argparse.SUPPRESS)  # accepted: `run` has no UI
    api_options(parser)
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    tcp, code = listen(args, "run -d" if args.detach else "run")
    if code:
        return code
    if args.detach:
        return run_detached(args.workflow, args.json, watch=not args.no_watch, tcp=tcp, api=args)
    return headless(args.workflow, args.json, watch=not args.no_watch, tcp=tcp, api=args)


def serve_api(supervisor: Supervisor, tcp: socket.socket | None) -> None:
    """Every supervisor serves the HTTP API (a companion in its loop: the engine does not know it)."""
    from vik_tui.api.front import companion

    if tcp is not None:
        supervisor.bind_address, supervisor.port = tcp.getsockname()[:2]
    supervisor.add_companion(companion(supervisor, tcp))


def headless(
    workflow_path: str,
    as_json: bool,
    watch: bool,
    extra_listener: ListenerFactory | None = None,
    *,
    loaded: LoadResult | None = None,
    command: str | None = None,
    on_started: Callable[[], None] | None = None,
    tcp: socket.socket | None = None,
    api: argparse.Namespace | None = None,
) -> int:
    import asyncio

    from vik_tui.engine import engine_events as ee
    from vik_tui.engine.headless import run_headless
    from vik_tui.engine.service.state import AlreadyRunning
    from vik_tui.engine.supervisor import Supervisor

    result, code = (loaded, 0) if loaded is not None else load_or_report(workflow_path)
    if result is None or result.workflow is None:
        return code
    command = command or command_line(api or argparse.Namespace(), False, result.path)
    supervisor = Supervisor(result.workflow, result.path, watch=watch, command=command)
    serve_api(supervisor, tcp)
    listeners = [extra_listener(supervisor)] if extra_listener is not None else []
    if on_started is not None:
        listeners.append(lambda event: on_started() if isinstance(event, ee.SupervisorStarted) else None)

    def fan_out(event: EngineEvent) -> None:
        for listener in listeners:
            listener(event)

    from vik_tui.cli import lean

    lean.quiet_collector()  # the workflow is loaded and the engine imported: the start-up heap is frozen
    try:
        return asyncio.run(run_headless(supervisor, as_json, extra_listener=fan_out if listeners else None))
    except AlreadyRunning as exc:
        print(f"vik-tui: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vik-tui: {exc}", file=sys.stderr)
        return 1


def run_detached(
    workflow_path: str,
    as_json: bool,
    watch: bool,
    verb: str = "run -d",
    tcp: socket.socket | None = None,
    api: argparse.Namespace | None = None,
) -> int:
    """`run -d`: refuse while a supervisor of this workflow runs, else detach and return once it started."""
    from vik_tui.engine.service import daemon
    from vik_tui.engine.service.paths import Layout

    result, code = load_or_report(workflow_path)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)
    try:
        daemon.refuse_if_running(layout.state_file)
        return daemon.detach(
            lambda started: headless(
                workflow_path,
                as_json,
                watch,
                loaded=result,
                command=command_line(api or argparse.Namespace(), True, result.path),
                on_started=started,
                tcp=tcp,
            ),
            layout.logs_dir / daemon.DAEMON_OUTPUT,
        )
    except (daemon.LifecycleError, OSError) as exc:
        print(f"vik-tui {verb}: {exc}", file=sys.stderr)
        return 1
    finally:
        if tcp is not None:
            tcp.close()  # the daemon has its own copy
