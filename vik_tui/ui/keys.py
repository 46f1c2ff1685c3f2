"""Every key of the main screen in one table: bindings, the footer, the help screen and the
command palette are all generated from it, so they cannot drift apart.

The footer shows keys in this order and cuts what does not fit, so `?` and `q` come first:
at 80 columns they stay visible."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma separated
    action: str
    label: str  # short, for the footer
    help: str  # one sentence, for the help screen and command palette
    display: str | None = None
    show: bool = True
    palette: bool = True
    priority: bool = False  # handled as the app receives the key, before the focused widget
    palette_title: str | None = None  # what the command palette matches (it searches titles only); else the label


KEYS: tuple[Key, ...] = (
    Key("question_mark", "help", "help", "Show every key and the glyph legend.", display="?"),
    Key(
        "q",
        "app.quit",
        "quit",
        "Quit; running agents are stopped cleanly (asks first). Attached to a supervisor: detach, agents keep running.",
    ),
    Key(
        "Q",
        "stop_supervisor",
        "stop supervisor",
        "Attached to a supervisor: stop it and its agents cleanly (asks first); q only detaches.",
        show=False,
    ),
    Key("c", "cancel", "cancel", "Cancel the selected stage (asks first); a pending retry is dropped."),
    Key("r", "retry", "retry", "Run the selected stage again now, with a fresh attempt count."),
    Key(
        "exclamation_mark",
        "attention",
        "attention",
        "Show only issues that need attention (failed, given up, rejected); again shows all.",
        display="!",
    ),
    Key(
        "e",
        "read",
        "read",
        "Read the selected session whole (every line, full tool output), scrollable, with / search; also enter.",
        display="e",
    ),
    Key(
        "a",
        "take_over",
        "take over",
        "Take over the agent: its own session (codex resume / claude --resume) in its workspace,"
        " in a tmux split inside tmux, else the app suspends; only when the stage is not running.",
    ),
    Key("s", "shell", "shell", "Open $SHELL in the issue workspace (a tmux split inside tmux, else the app suspends)."),
    Key("d", "diff", "diff", "Show `git diff` of the issue workspace."),
    Key(
        "slash",
        "filter",
        "filter",
        "Filter the issue list by id, title or state (the backlog too); Esc clears.",
        display="/",
    ),
    Key("b", "toggle_backlog", "backlog", "Show or hide the backlog: issues no stage matches that never ran."),
    Key(
        "t",
        "queue",
        "queue",
        "Throughput, rate limits and the retry queue (issue, stage, attempt, due in, last error).",
        show=False,
        palette_title="Queue: throughput, rate limits, retries",
    ),
    Key("l", "toggle_log", "log", "Show or hide the engine log pane.", show=False),
    Key("p", "pause", "pause", "Pause intake: no new polls, running stages continue."),
    Key("p", "resume", "resume", "Resume intake."),
    Key("f", "poll_now", "poll", "Poll the tracker now."),
    Key(
        "o",
        "open_session",
        "session",
        "Show the session JSONL path of the selected pane (and ask the terminal to copy it).",
        show=False,
    ),
    # priority: the key moves the cursor where the app receives it, instead of being handed on
    # to the focused list first (one message hop less, each a turn of a loop the agents share)
    Key("j", "cursor_down", "down", "Next issue (also ↓ in the list).", show=False, palette=False, priority=True),
    Key("k", "cursor_up", "up", "Previous issue (also ↑ in the list).", show=False, palette=False, priority=True),
    Key("tab", "next_pane", "next tab", "Next session tab of the selected issue.", display="tab", show=False),
    Key("shift+tab", "prev_pane", "prev tab", "Previous session tab.", display="shift+tab", show=False),
    Key("escape", "clear_filter", "clear filter", "Clear the filter.", display="esc", show=False, palette=False),
)


def bindings() -> list[BindingType]:
    return [
        Binding(
            k.keys, k.action, k.label, show=k.show, key_display=k.display, priority=k.priority, id=f"vik.{k.action}"
        )
        for k in KEYS
    ]
