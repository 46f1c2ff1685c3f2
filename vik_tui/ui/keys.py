"""Every key of the main screen in one table: bindings, the footer, the help screen and the
command palette are all generated from it, so they cannot drift apart."""

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


KEYS: tuple[Key, ...] = (
    Key("c", "cancel", "cancel", "Cancel the selected stage (asks first); a pending retry is dropped."),
    Key("r", "retry", "retry", "Run the selected stage again now, with a fresh attempt count."),
    Key("s", "shell", "shell", "Open $SHELL in the issue workspace (a tmux split inside tmux, else the app suspends)."),
    Key("d", "diff", "diff", "Show `git diff` of the issue workspace."),
    Key("slash", "filter", "filter", "Filter the issue list by id, title or state; Esc clears.", display="/"),
    Key("l", "toggle_log", "log", "Show or hide the engine log pane."),
    Key("p", "pause", "pause", "Pause intake: no new polls, running stages continue."),
    Key("p", "resume", "resume", "Resume intake."),
    Key("f", "poll_now", "poll", "Poll the tracker now."),
    Key("o", "open_session", "session", "Show the session JSONL path of the selected pane and copy it."),
    Key("j", "cursor_down", "down", "Next issue (also ↓ in the list).", show=False, palette=False),
    Key("k", "cursor_up", "up", "Previous issue (also ↑ in the list).", show=False, palette=False),
    Key("tab", "next_pane", "next pane", "Next session pane of the selected issue.", display="tab", show=False),
    Key("shift+tab", "prev_pane", "prev pane", "Previous session pane.", display="shift+tab", show=False),
    Key("escape", "clear_filter", "clear filter", "Clear the filter.", display="esc", show=False, palette=False),
    Key("question_mark", "help", "help", "Show every key.", display="?"),
    Key("q", "app.quit", "quit", "Quit; running agents are stopped cleanly (asks first)."),
)


def bindings() -> list[BindingType]:
    return [Binding(k.keys, k.action, k.label, show=k.show, key_display=k.display, id=f"vik.{k.action}") for k in KEYS]
