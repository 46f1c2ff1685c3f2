"""Command line: `vik-tui [WORKFLOW]` (the UI), `vik-tui demo`, `vik-tui doctor`, and vik's lifecycle:
`run [-d]`, `status`, `stop`, `restart`, `uninstall`.

Every failure a user can cause ends in a clear message and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vik_tui import __version__

if TYPE_CHECKING:  # imported lazily at run time: `--help` and `doctor` should not load the engine or the UI
    import socket

    from vik_tui.api.target import ApiTarget
    from vik_tui.config.diagnostics import Diagnostic
    from vik_tui.config.loader import LoadResult
    from vik_tui.engine.engine_events import EngineEvent, Listener
    from vik_tui.engine.supervisor import Supervisor

    ListenerFactory = Callable[[Supervisor], Listener]

DEFAULT_WORKFLOW = "workflow.yml"


def _doctor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui doctor", description="Check a workflow.yml and explain every problem."
    )
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--strict", action="store_true", help="warnings also fail (exit 1)")
    parser.add_argument("--json", action="store_true", help='print {"errors": [...], "warnings": [...]}')
    parser.add_argument("--deep", action="store_true", help="also run the pull command once and check its issues")
    return parser


def _run_parser() -> argparse.ArgumentParser:
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
    _api_options(parser)
    return parser


def _api_options(parser: argparse.ArgumentParser) -> None:
    """vik's `--port` / `--bind-address` (the HTTP API on TCP; service/api.sock is always served)."""
    parser.add_argument(
        "--port", type=int, default=None, help="also serve the HTTP API on this TCP port (0: any free port)"
    )
    parser.add_argument("--bind-address", default="127.0.0.1", help="address for --port (default 127.0.0.1)")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --bind-address that is not loopback (token still required)"
    )


def _command_line(args: argparse.Namespace, detached: bool, workflow: object) -> str:
    """state.json's `command`: the command line that started the supervisor, API options
    included (vik's `format_command`), so `status` shows how to start it again."""
    parts = ["vik-tui", "run"] + (["-d"] if detached else [])
    if getattr(args, "port", None) is not None:
        parts.append(f"--port {args.port}")
    if getattr(args, "bind_address", "127.0.0.1") != "127.0.0.1":
        parts.append(f"--bind-address {args.bind_address}")
    if getattr(args, "allow_remote", False):
        parts.append("--allow-remote")
    return " ".join([*parts, str(workflow)])


def _listen(args: argparse.Namespace, verb: str) -> tuple[socket.socket | None, int]:
    """The TCP socket of `--port`, bound now so that a port in use is one line and exit 1."""
    if args.port is None:
        return None, 0
    from vik_tui.api.endpoint import EndpointError, listen_tcp

    try:
        return listen_tcp(args.bind_address, args.port, args.allow_remote), 0
    except EndpointError as exc:
        print(f"{' '.join(['vik-tui', verb]).strip()}: {exc}", file=sys.stderr)
        return None, 1


def _serve_local_engine(engine: object, tcp: socket.socket | None) -> None:
    """The UI's local engine is the Supervisor: it serves the API like every supervisor."""
    from vik_tui.engine.supervisor import Supervisor

    if isinstance(engine, Supervisor):
        _serve_api(engine, tcp)


def _serve_api(supervisor: Supervisor, tcp: socket.socket | None) -> None:
    """Every supervisor serves the HTTP API (a companion in its loop: the engine does not know it)."""
    from vik_tui.api.server import companion

    if tcp is not None:
        supervisor.bind_address, supervisor.port = tcp.getsockname()[:2]
    supervisor.add_companion(companion(supervisor, tcp))


def _lifecycle_parser(command: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"vik-tui {command}", description=description)
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    if command == "restart":  # vik's restart takes the new daemon's API options
        _api_options(parser)
    if command == "stop":
        parser.add_argument(
            "--drain",
            action="store_true",
            help="start nothing new, let running stages finish, then exit (a plain `stop` later ends it at once)",
        )
    return parser


def _explain_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui explain",
        description="Say why an issue is or is not running: asks the running supervisor, or, with none"
        " running, answers from the workflow, its files and one pull of the tracker.",
    )
    parser.add_argument("issue", help="the issue id, as the tracker prints it")
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--json", action="store_true", help='print {"issue_id", "code", "words", "stage"}')
    return parser


LIFECYCLE = {
    "status": "Say whether a supervisor of the workflow is running (from its service/state.json).",
    "stop": "Stop the workflow's supervisor: SIGTERM, then wait until its agents are stopped and it exits.",
    "restart": "Stop the workflow's supervisor if one runs, then start it again detached (run -d).",
    "uninstall": "Stop the workflow's supervisor if one runs and remove its state file.",
}


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vik-tui demo", description="Run the built-in demo (no agent CLI needed).")
    parser.add_argument("--dir", default=None, help="where to write the demo project (default: ~/.cache/vik-tui/demo)")
    parser.add_argument("--headless", action="store_true", help="no UI; exit 0 when every demo issue is done")
    parser.add_argument("--json", action="store_true", help="with --headless: JSON Lines of engine events")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated agent speed multiplier (default 1.0)")
    parser.add_argument("--timeout", type=float, default=600.0, help="with --headless: give up after this many seconds")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell when a stage fails")
    return parser


def _attach_parser() -> argparse.ArgumentParser:
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


WEB_PORT = 8765
WEB_MAX_TABS = 8


def _web_parser() -> argparse.ArgumentParser:
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


def _init_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui init",
        description="Write a starter project (workflow.yml, prompts/work.md, issues.json) that runs as written.",
    )
    parser.add_argument("directory", nargs="?", default=".", help="where to write it (default: here)")
    parser.add_argument(
        "--runtime", choices=("codex", "claude_code"), default="codex", help="the agent CLI (default: codex)"
    )
    return parser


def _tui_parser() -> argparse.ArgumentParser:
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
    _api_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "doctor":
            args = _doctor_parser().parse_args(argv[1:])
            from vik_tui.config.doctor import run_doctor
            from vik_tui.engine.intake import pull_check
            from vik_tui.engine.places.host_checks import hosts_check

            def deep(result: LoadResult) -> list[Diagnostic]:  # the tracker, then every SSH host
                return pull_check(result) + hosts_check(result)

            return run_doctor(args.workflow, args.strict, args.json, sys.stdout, deep=deep if args.deep else None)
        if argv and argv[0] == "run":
            args = _run_parser().parse_args(argv[1:])
            tcp, code = _listen(args, "run -d" if args.detach else "run")
            if code:
                return code
            if args.detach:
                return _run_detached(args.workflow, args.json, watch=not args.no_watch, tcp=tcp, api=args)
            return _headless(args.workflow, args.json, watch=not args.no_watch, tcp=tcp, api=args)
        if argv and argv[0] in LIFECYCLE:
            args = _lifecycle_parser(argv[0], LIFECYCLE[argv[0]]).parse_args(argv[1:])
            if getattr(args, "drain", False):
                return _drain(args.workflow)
            return _lifecycle(argv[0], args.workflow, args)
        if argv and argv[0] == "attach":
            args = _attach_parser().parse_args(argv[1:])
            return _attach(args.target, args.token, bell=not args.no_bell)
        if argv and argv[0] == "explain":
            args = _explain_parser().parse_args(argv[1:])
            return _explain(args.issue, args.workflow, args.json)
        if argv and argv[0] == "web":
            return _web(_web_parser().parse_args(argv[1:]))
        if argv and argv[0] == "init":
            return _init(_init_parser().parse_args(argv[1:]))
        if argv and argv[0] == "demo":
            return _demo(_demo_parser().parse_args(argv[1:]))
        args = _tui_parser().parse_args(argv)
        refusal = _no_workflow(args.workflow) or _no_terminal(f"vik-tui run {args.workflow}")
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
        tcp, code = _listen(args, "")
        if code:
            return code
        return _tui(args.workflow, watch=not args.no_watch, bell=not args.no_bell, tcp=tcp)
    except KeyboardInterrupt:
        return 130


def _load_or_report(workflow_path: str, quiet: bool = False) -> tuple[LoadResult | None, int]:
    """Load a workflow; on errors print them like doctor does and return None and exit code 1,
    vik's for `run`, `status`, `stop` and `restart` whether the file is missing, unparseable or
    invalid (`doctor` alone tells them apart, with 2). `quiet`: no warnings."""
    from vik_tui.config.loader import load_workflow

    result = load_workflow(workflow_path)
    if not result.ok:
        for diag in result.diagnostics:
            print(diag.render(str(result.path)), file=sys.stderr)
        print(f"{result.path}: cannot start: fix the errors above (see `vik-tui doctor`)", file=sys.stderr)
        return None, 1
    if not quiet:
        for diag in result.warnings:
            print(diag.render(str(result.path)), file=sys.stderr)
    return result, 0


def _headless(
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
    from vik_tui.engine import engine_events as ee
    from vik_tui.engine.headless import run_headless
    from vik_tui.engine.service.state import AlreadyRunning
    from vik_tui.engine.supervisor import Supervisor

    result, code = (loaded, 0) if loaded is not None else _load_or_report(workflow_path)
    if result is None or result.workflow is None:
        return code
    command = command or _command_line(api or argparse.Namespace(), False, result.path)
    supervisor = Supervisor(result.workflow, result.path, watch=watch, command=command)
    _serve_api(supervisor, tcp)
    listeners = [extra_listener(supervisor)] if extra_listener is not None else []
    if on_started is not None:
        listeners.append(lambda event: on_started() if isinstance(event, ee.SupervisorStarted) else None)

    def fan_out(event: EngineEvent) -> None:
        for listener in listeners:
            listener(event)

    try:
        return asyncio.run(run_headless(supervisor, as_json, extra_listener=fan_out if listeners else None))
    except AlreadyRunning as exc:
        print(f"vik-tui: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vik-tui: {exc}", file=sys.stderr)
        return 1


def _run_detached(
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

    result, code = _load_or_report(workflow_path)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)
    try:
        daemon.refuse_if_running(layout.state_file)
        return daemon.detach(
            lambda started: _headless(
                workflow_path,
                as_json,
                watch,
                loaded=result,
                command=_command_line(api or argparse.Namespace(), True, result.path),
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


def _lifecycle(command: str, workflow_path: str, args: argparse.Namespace | None = None) -> int:
    """`status`, `stop`, `restart`, `uninstall`: vik's wording and exit codes (vik_compare §7)."""
    from vik_tui.engine.service import daemon
    from vik_tui.engine.service.paths import Layout

    result, code = _load_or_report(workflow_path, quiet=True)
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
            api = _restart_api(args or argparse.Namespace(port=None), state_file)
            stopped = daemon.stop_if_running(state_file)
            print("daemon stopped; starting a fresh one" if stopped else "no daemon was running; starting one")
            sys.stdout.flush()
            tcp, code = _listen(api, "restart")  # the old daemon's port is free now
            if code:
                return code
            return _run_detached(workflow_path, as_json=False, watch=True, verb="restart", tcp=tcp, api=api)
    except (daemon.LifecycleError, OSError) as exc:
        print(f"vik-tui {command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _restart_api(args: argparse.Namespace, state_file: Path) -> argparse.Namespace:
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


def _drain(workflow_path: str) -> int:
    """`stop --drain`: ask the running supervisor (over service/api.sock) to drain."""
    from vik_tui.api.ask import NotServing, ask
    from vik_tui.api.routes import url_for
    from vik_tui.engine.service.paths import Layout

    result, code = _load_or_report(workflow_path, quiet=True)
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


def _explain(issue_id: str, workflow_path: str, as_json: bool) -> int:
    """`explain ID`: the running supervisor's answer, else one computed from files and one pull."""
    import json

    from vik_tui.api.ask import NotServing, ask
    from vik_tui.api.routes import url_for
    from vik_tui.engine.explain import explain
    from vik_tui.engine.offline import offline_view
    from vik_tui.engine.service.paths import Layout
    from vik_tui.engine.view import ExplainCode

    result, code = _load_or_report(workflow_path, quiet=True)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)
    source = "the running supervisor"
    try:
        status, body = ask(layout.api_socket, "GET", url_for("explain", issue_id=issue_id))
    except NotServing:
        view, error = asyncio.run(offline_view(result.workflow, result.path))
        said = explain(view, issue_id)
        body = {"issue_id": said.issue_id, "code": str(said.code), "words": said.words, "stage": said.stage}
        status = 404 if said.code == ExplainCode.UNKNOWN else 200
        source = "no supervisor is running; from the workflow and one pull" + (
            f" (it failed: {error})" if error else ""
        )
    if isinstance(body, dict) and "error" in body:
        body = {"issue_id": issue_id, "code": "unknown", "words": body["error"].get("message", ""), "stage": None}
    if as_json:
        print(json.dumps({**body, "source": source}))
    else:
        print(f"{issue_id}: {body['words']}  [{body['code']}]")
        print(f"  ({source})")
    return 0 if status < 400 else 1


def _no_terminal(instead: str) -> str | None:
    """The UI needs a terminal on both sides: with stdin at EOF (cron, systemd, `nohup`, `ssh
    host cmd`) it would spin on reads, and escape codes would land in a redirected stdout."""
    if "web_driver" in os.environ.get("TEXTUAL_DRIVER", ""):  # a `vik-tui web` tab: the page is its terminal
        return None  # (Textual's web driver speaks its protocol on the pipes)
    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)) if not _is_tty(stream)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"vik-tui: {' and '.join(missing)} {verb} not a terminal, so there is no UI to show; run `{instead}` instead"


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False


def _no_workflow(workflow_path: str) -> str | None:
    """`vik-tui` where there is no workflow yet: say how to get one rather than only "not found"."""
    if Path(workflow_path).expanduser().exists():
        return None
    return (
        f"vik-tui: no workflow at {workflow_path}: create a starter project with `vik-tui init`"
        " (then edit its pull command), or see one running with `vik-tui demo`"
    )


def _tui(workflow_path: str, watch: bool, bell: bool = True, tcp: socket.socket | None = None) -> int:
    """The UI: attached to the workflow's supervisor when one runs, else with the engine
    in-process (serving the API, so another terminal can attach to it)."""
    try:
        from vik_tui.ui.app import run_app
    except ImportError as exc:  # pragma: no cover - only when the UI is not installed
        print(f"vik-tui: the terminal UI is unavailable ({exc}); use `vik-tui run --headless`", file=sys.stderr)
        return 1
    found = _running_supervisor(workflow_path)
    if isinstance(found, int):
        return found
    if found is not None:
        if tcp is not None:
            tcp.close()
        return _run_attached(found, bell)
    return run_app(workflow_path, watch=watch, bell=bell, prepare=lambda engine: _serve_local_engine(engine, tcp))


def _running_supervisor(workflow_path: str) -> ApiTarget | int | None:
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


def _attach(target: str, token: str | None, bell: bool) -> int:
    """`vik-tui attach [WORKFLOW | URL]`: never starts a supervisor."""
    from vik_tui.api.target import TargetError, from_url

    try:
        if target.startswith(("http://", "https://")):
            found: ApiTarget | int | None = from_url(target, token or os.environ.get("VIK_TUI_TOKEN"))
        else:
            if not Path(target).is_file():
                print(f"vik-tui attach: no workflow file at {target} (or give http://HOST:PORT)", file=sys.stderr)
                return 2
            found = _running_supervisor(target)
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
    return _run_attached(found, bell)


def _run_attached(target: ApiTarget, bell: bool) -> int:
    from vik_tui.api.attached import AttachedEngine, probe
    from vik_tui.ui.app import run_engine_app

    problem = asyncio.run(probe(target))
    if problem is not None:
        print(f"vik-tui attach: {problem}", file=sys.stderr)
        return 1
    refusal = _no_terminal(f"vik-tui status {target.workflow_path or ''}".strip())
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    return run_engine_app(AttachedEngine(target), bell=bell)


def _web(args: argparse.Namespace) -> int:
    """`vik-tui web`: the UI in a browser, one attached UI process per tab (vik_tui/web)."""
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
    result, code = _load_or_report(args.workflow, quiet=True)
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


def _init(args: argparse.Namespace) -> int:
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


def _demo(args: argparse.Namespace) -> int:
    from vik_tui.demo.project import demo_all_done, reset_demo, write_demo_project

    directory = (
        Path(args.dir).expanduser()
        if args.dir
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vik-tui" / "demo"
    )
    directory = directory.resolve()
    refusal = None if args.headless else _no_terminal("vik-tui demo --headless")
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    if not args.speed > 0:
        print(f"vik-tui demo: --speed must be greater than 0 (got {args.speed:g})", file=sys.stderr)
        return 2
    try:
        if directory.exists() and demo_all_done(directory):
            reset_demo(directory)  # a finished demo starts over
        workflow = write_demo_project(directory, speed=args.speed)
    except OSError as exc:
        print(f"vik-tui demo: cannot write the demo project in {directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"vik-tui demo: project in {directory}", file=sys.stderr)
    if not args.headless:
        return _tui(str(workflow), watch=True, bell=not args.no_bell)

    from vik_tui.engine.engine_events import Intake

    state = {"done": False}
    deadline = time.monotonic() + args.timeout

    def stop_when_done(supervisor: Supervisor) -> Listener:
        def listener(event: EngineEvent) -> None:
            if not isinstance(event, Intake):
                return
            if demo_all_done(directory):
                state["done"] = True
                supervisor.finish()
            elif time.monotonic() > deadline:
                supervisor.stop()

        return listener

    code = _headless(str(workflow), args.json, watch=False, extra_listener=stop_when_done)
    if code == 0 and not state["done"]:
        print(f"vik-tui demo: not every issue reached done within {args.timeout:g}s", file=sys.stderr)
        return 1
    return code
