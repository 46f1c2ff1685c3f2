"""What several commands share: the default workflow, loading one with its diagnostics printed,
vik's API options, and whether there is a terminal for a UI. Cheap to import (no engine)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

    from vik_tui.config.loader import LoadResult

DEFAULT_WORKFLOW = "workflow.yml"


def api_options(parser: argparse.ArgumentParser) -> None:
    """vik's `--port` / `--bind-address` (the HTTP API on TCP; service/api.sock is always served)."""
    parser.add_argument(
        "--port", type=int, default=None, help="also serve the HTTP API on this TCP port (0: any free port)"
    )
    parser.add_argument("--bind-address", default="127.0.0.1", help="address for --port (default 127.0.0.1)")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --bind-address that is not loopback (token still required)"
    )


def command_line(args: argparse.Namespace, detached: bool, workflow: object) -> str:
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


def listen(args: argparse.Namespace, verb: str) -> tuple[socket.socket | None, int]:
    """The TCP socket of `--port`, bound now so that a port in use is one line and exit 1."""
    if args.port is None:
        return None, 0
    from vik_tui.api.endpoint import EndpointError, listen_tcp

    try:
        return listen_tcp(args.bind_address, args.port, args.allow_remote), 0
    except EndpointError as exc:
        print(f"{' '.join(['vik-tui', verb]).strip()}: {exc}", file=sys.stderr)
        return None, 1


def load_or_report(workflow_path: str, quiet: bool = False) -> tuple[LoadResult | None, int]:
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


def no_terminal(instead: str) -> str | None:
    """The UI needs a terminal on both sides: with stdin at EOF (cron, systemd, `nohup`, `ssh
    host cmd`) it would spin on reads, and escape codes would land in a redirected stdout."""
    if "web_driver" in os.environ.get("TEXTUAL_DRIVER", ""):  # a `vik-tui web` tab: the page is its terminal
        return None  # (Textual's web driver speaks its protocol on the pipes)
    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)) if not is_tty(stream)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"vik-tui: {' and '.join(missing)} {verb} not a terminal, so there is no UI to show; run `{instead}` instead"


def is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False
