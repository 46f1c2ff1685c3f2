"""`?`: every key of the main screen, generated from the same table as the bindings."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
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


def help_rows() -> list[tuple[str, str]]:
    """(key, what it does), one row per key; `p` (pause and resume) is one row."""
    rows: list[tuple[str, str]] = []
    for key in KEYS:
        shown = _display(key.keys, key.display)
        if rows and any(k == shown for k, _ in rows):
            rows = [(k, f"{h} Again: {key.help[0].lower()}{key.help[1:]}" if k == shown else h) for k, h in rows]
            continue
        rows.append((shown, key.help))
    rows.extend(EXTRA)
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "close"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Static("[b]Keys[/]", classes="dialog-title")
            with VerticalScroll(), Grid(id="help-keys"):
                for key, text in help_rows():
                    yield Static(escape(key), classes="help-key")
                    yield Static(escape(text), classes="help-text")
            yield Static("[$text-muted]esc, q or ? closes[/]", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
