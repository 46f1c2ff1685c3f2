"""Run a `Terminal` plan (a shell in a workspace, a taken-over agent) for the UI, which never
spawns processes itself: in a tmux pane beside the app, or attached while the app is suspended."""

from __future__ import annotations

import subprocess

from vik_tui.engine.places.workspace_tools import split_tmux
from vik_tui.engine.view import Terminal


def open_in_tmux(plan: Terminal) -> tuple[bool, str]:
    """Run the plan in a new tmux pane beside the app, so the UI keeps streaming."""
    return split_tmux(plan.cwd, plan.command_line, f"opened {plan.what} in a tmux pane: {plan.command_line}")


def run_attached(plan: Terminal) -> int:
    """Run the plan attached to the terminal until the user leaves it (the app is suspended)."""
    try:
        return subprocess.call(list(plan.argv), cwd=str(plan.cwd))
    except OSError as exc:
        print(f"vik-tui: cannot start {plan.argv[0]}: {exc}")
        return 127
