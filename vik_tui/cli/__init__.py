"""Command line: `vik-tui [WORKFLOW]` (the UI), `vik-tui demo`, `vik-tui doctor`, and vik's lifecycle:
`run [-d]`, `status`, `stop`, `restart`, `uninstall`.

Every failure a user can cause ends in a clear message and an exit code, never a traceback.

One module per command family, each imported only when its command runs, and each importing
what it needs only where it needs it: `vik-tui run` loads neither Textual nor the HTTP server's
code (that waits for the first client, `api.front`), `vik-tui --help` not even asyncio.

- `run`: `run [-d]` (the headless supervisor, foreground or daemon), and the API it serves
- `lifecycle`: `status`, `stop [--drain]`, `restart`, `uninstall`
- `explain`, `doctor`, `init`, `web`, `demo`: one command each
- `tui`: the UI (`vik-tui [WORKFLOW]`, in-process or attached) and `attach`
- `lean`: what `run` does to its own process (no TLS, no pydantic plugins, no interpreter teardown)
- `common`: what several of them share (loading a workflow, the API options, terminal checks)
"""

from __future__ import annotations

import sys

LIFECYCLE_COMMANDS = ("status", "stop", "restart", "uninstall")


def main(argv: list[str] | None = None) -> int:
    program = argv is None  # the process is ours: `vik-tui ...` or `python -m vik_tui ...`
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "doctor":
            from vik_tui.cli import doctor

            return doctor.main(rest)
        if command == "run":
            from vik_tui.cli import lean, run

            if program:  # not a caller's process (`lean`)
                lean.as_program()
                lean.end(run.main(rest))
            return run.main(rest)
        if command in LIFECYCLE_COMMANDS:
            from vik_tui.cli import lifecycle

            return lifecycle.main(command, rest)
        if command == "attach":
            from vik_tui.cli import tui

            return tui.attach_main(rest)
        if command == "explain":
            from vik_tui.cli import explain

            return explain.main(rest)
        if command == "web":
            from vik_tui.cli import web

            return web.main(rest)
        if command == "init":
            from vik_tui.cli import init

            return init.main(rest)
        if command == "demo":
            from vik_tui.cli import demo

            return demo.main(rest)
        from vik_tui.cli import tui

        return tui.main(argv)
    except KeyboardInterrupt:
        return 130
