"""`vik-tui web [WORKFLOW]`: the UI in a browser, one attached UI process per tab (vik_tui/web);
this process loads no Textual."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vik_tui.cli.common import DEFAULT_WORKFLOW, load_or_report

WEB_PORT = 8765
WEB_MAX_TABS = 8


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui web",
        description=(
            "Serve the UI in a browser: each tab runs `vik-tui attach WORKFLOW` against the workflow's running"
            " supervisor, behind its API token (service/api.token). Closing a tab detaches; agents go on."
        ),
    )
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--port", type=int, default=WEB_PORT, help=f"TCP port (default {WEB_PORT}; 0: any free port)")
    parser.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --bind-address that is not loopback (token still required)"
    )
    parser.add_argument("--start", action="store_true", help="start the supervisor (`run -d`) when none is running")
    parser.add_argument(
        "--max-tabs", type=int, default=WEB_MAX_TABS, help=f"most tabs at once, each a process (default {WEB_MAX_TABS})"
    )
    parser.add_argument("--no-bell", action="store_true", help="no bell in the tabs when a stage completes or fails")
    return parser


def main(argv: list[str]) -> int:
    return web(parser().parse_args(argv))


def web(args: argparse.Namespace) -> int:
    """`vik-tui web`: the UI in a browser, one attached UI process per tab (vik_tui/web)."""
    import subprocess

    from vik_tui.api.endpoint import EndpointError, listen_tcp, read_token
    from vik_tui.api.target import TargetError, live_supervisor
    from vik_tui.engine.service.paths import Layout
    from vik_tui.web.access import Access
    from vik_tui.web.server import WebConfig, WebServer, run

    if args.max_tabs < 1:
        print(f"vik-tui web: --max-tabs must be at least 1 (got {args.max_tabs})", file=sys.stderr)
        return 2
    if not Path(args.workflow).is_file():
        print(f"vik-tui web: no workflow file at {args.workflow}", file=sys.stderr)
        return 2
    result, code = load_or_report(args.workflow, quiet=True)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)

    def alive() -> bool:
        try:
            return live_supervisor(layout, wait=0.0) is not None
        except TargetError:
            return False

    try:
        tcp = listen_tcp(args.bind_address, args.port, args.allow_remote)  # first: a port in use starts nothing
    except EndpointError as exc:
        print(f"vik-tui web: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            found = live_supervisor(layout)
            if found is None and args.start:  # a subprocess: a forked daemon would keep this port open
                started = subprocess.run([sys.executable, "-m", "vik_tui", "run", "-d", str(result.path)], check=False)
                if started.returncode != 0:
                    return started.returncode
                found = live_supervisor(layout)
        except TargetError as exc:
            print(f"vik-tui web: {exc}", file=sys.stderr)
            return 1
        if found is None:
            print(
                f"vik-tui web: no supervisor of {result.path} is running; start one with"
                f" `vik-tui run -d {result.path}` (or add --start)",
                file=sys.stderr,
            )
            return 1
        token_file = layout.api_token_file
        if read_token(token_file) is None:
            print(f"vik-tui web: the supervisor has no API token at {token_file}; restart it", file=sys.stderr)
            return 1
        argv = [sys.executable, "-m", "vik_tui", "attach", str(result.path)]
        if args.no_bell:
            argv.append("--no-bell")
        config = WebConfig(
            workflow=result.path, token_file=token_file, tab_argv=argv, max_tabs=args.max_tabs, supervisor_alive=alive
        )
        port = tcp.getsockname()[1]
        server = WebServer(
            config,
            Access(read_token=lambda: read_token(token_file), port=port),
            say=lambda line: print(line, flush=True),
        )

        def announce(url: str) -> None:
            print(f"vik-tui web: {result.path} at {url} (at most {args.max_tabs} tabs; Ctrl+C stops serving)")
            login = f"{url}?token={read_token(token_file)}" if sys.stdout.isatty() else None
            print(f"vik-tui web: log in with the token in {token_file}" + (f", or open {login}" if login else ""))
            sys.stdout.flush()

        return run(server, tcp, announce)
    finally:
        tcp.close()
