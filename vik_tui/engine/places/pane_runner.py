"""What runs inside a tmux pane opened for a `Terminal` plan (a take-over, a shell).

`tmux split-window` starts its command with the tmux server's environment, not ours: an API
key or `CODEX_HOME` set for vik-tui was lost in the pane. The plan's environment travels in a
0600 file (not on a command line that `ps` shows), which this runner reads and removes first.
A command that fails within `QUICK_EXIT_SEC` (a CLI refusing its arguments, a missing login)
would close its pane and take its error with it: the runner says how it ended and keeps the pane
open until Enter. A clean exit (a shell left with `exit`) closes the pane as before.

    python -m vik_tui.engine.places.pane_runner SPEC_FILE
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

QUICK_EXIT_SEC = 5.0


def write_spec(argv: Sequence[str], cwd: Path, env: Mapping[str, str], what: str) -> Path:
    """The plan for the runner, in a file only this user can read (mkstemp makes it 0600)."""
    fd, name = tempfile.mkstemp(prefix="vik-tui-pane-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"argv": list(argv), "cwd": str(cwd), "env": dict(env), "what": what}, handle)
    return Path(name)


def runner_command(spec: Path) -> list[str]:
    return [sys.executable, "-m", "vik_tui.engine.places.pane_runner", str(spec)]


def describe_exit(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


def main(args: list[str]) -> int:
    spec_path = Path(args[0])
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    finally:
        spec_path.unlink(missing_ok=True)
    argv, what = [str(a) for a in spec["argv"]], str(spec["what"])
    started = time.monotonic()
    try:
        code = subprocess.call(argv, cwd=spec["cwd"], env={str(k): str(v) for k, v in spec["env"].items()})
    except OSError as exc:
        code = 127
        print(f"vik-tui: cannot start {argv[0]}: {exc.strerror or exc}")
    elapsed = time.monotonic() - started
    if code != 0 and elapsed < QUICK_EXIT_SEC:  # a failure at once: keep its words on screen
        print(f"\n[vik-tui] {what}: `{argv[0]}` {describe_exit(code)} after {elapsed:.1f}s; press Enter to close")
        with contextlib.suppress(EOFError):  # stdin closed: nothing to wait for
            input()
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
