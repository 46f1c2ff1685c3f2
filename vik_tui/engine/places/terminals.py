"""Run a `Terminal` plan (a shell in a workspace, a taken-over agent) for the UI, which never
spawns processes itself: in a tmux pane beside the app, or attached while the app is suspended."""

from __future__ import annotations

import os
import shlex
import subprocess

from vik_tui.engine.places.pane_runner import runner_command, write_spec
from vik_tui.engine.places.workspace_tools import split_tmux
from vik_tui.engine.view import Terminal


def open_in_tmux(plan: Terminal) -> tuple[bool, str]:
    """Run the plan in a new tmux pane beside the app, so the UI keeps streaming: with our
    environment, and kept open with its exit status if it ends at once (`pane_runner`)."""
    try:
        spec = write_spec(plan.argv, plan.cwd, os.environ, plan.what)
    except OSError as exc:
        return False, f"cannot prepare the pane: {exc.strerror or exc}"
    ok, message = split_tmux(
        plan.cwd, shlex.join(runner_command(spec)), f"opened {plan.what} in a tmux pane: {plan.command_line}"
    )
    if not ok:
        spec.unlink(missing_ok=True)
    return ok, message


def run_attached(plan: Terminal) -> int:
    """Run the plan attached to the terminal until the user leaves it (the app is suspended)."""
    try:
        return subprocess.call(list(plan.argv), cwd=str(plan.cwd))
    except OSError as exc:
        print(f"vik-tui: cannot start {plan.argv[0]}: {exc}")
        return 127
