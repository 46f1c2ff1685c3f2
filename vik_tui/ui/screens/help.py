"""`?`: every key of the main screen, generated from the same table as the bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from vik_tui.ui.keys import KEYS

EXTRA = (
    ("↑ ↓", "Move in the issue list (when it has focus)."),
    ("ctrl+p", "Command palette: every action by name."),
    ("ctrl+q", "Quit, like q."),
)


def _display(keys: str, display: str | None) -> str:
    if display:
        return display
    return " ".join({"question_mark": "?", "slash": "/", "escape": "esc"}.get(k, k) for k in keys.split(","))


def help_text() -> str:
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in KEYS:
        shown = _display(key.keys, key.display)
        label = key.help
        if shown in seen:  # p pauses or resumes: one line
            rows = [(k, f"{h} Pressed again: {label.lower()}" if k == shown else h) for k, h in rows]
            continue
        seen.add(shown)
        rows.append((shown, label))
    rows.extend(EXTRA)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"[b $accent]{escape(k).ljust(width)}[/]  {escape(h)}" for k, h in rows)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "close"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Static("[b]Keys[/]", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_text(), id="help-keys")
            yield Static("[$text-muted]esc, q or ? closes[/]", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
