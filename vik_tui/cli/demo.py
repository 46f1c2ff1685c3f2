"""`vik-tui demo [--dir DIR] [--headless]`: the built-in demo, no agent CLI needed; in the UI,
or headless until every demo issue is done."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vik_tui.cli.common import no_terminal

if TYPE_CHECKING:
    from vik_tui.engine.engine_events import EngineEvent, Listener
    from vik_tui.engine.supervisor import Supervisor


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vik-tui demo", description="Run the built-in demo (no agent CLI needed).")
    parser.add_argument("--dir", default=None, help="where to write the demo project (default: ~/.cache/vik-tui/demo)")
    parser.add_argument("--headless", action="store_true", help="no UI; exit 0 when every demo issue is done")
    parser.add_argument("--json", action="store_true", help="with --headless: JSON Lines of engine events")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated agent speed multiplier (default 1.0)")
    parser.add_argument("--timeout", type=float, default=600.0, help="with --headless: give up after this many seconds")
    parser.add_argument("--no-bell", action="store_true", help="no terminal bell when a stage fails")
    return parser


def main(argv: list[str]) -> int:
    return demo(parser().parse_args(argv))


def demo(args: argparse.Namespace) -> int:
    from vik_tui.demo.project import demo_all_done, reset_demo, write_demo_project

    directory = (
        Path(args.dir).expanduser()
        if args.dir
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vik-tui" / "demo"
    )
    directory = directory.resolve()
    refusal = None if args.headless else no_terminal("vik-tui demo --headless")
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
        from vik_tui.cli.tui import tui

        return tui(str(workflow), watch=True, bell=not args.no_bell)

    import time

    from vik_tui.cli.run import headless
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

    code = headless(str(workflow), args.json, watch=False, extra_listener=stop_when_done)
    if code == 0 and not state["done"]:
        print(f"vik-tui demo: not every issue reached done within {args.timeout:g}s", file=sys.stderr)
        return 1
    return code
