"""`?`: every key of the main screen (generated from the same table as the bindings) and the
legend of the STAGES glyphs and the header."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.keys import KEYS
from vik_tui.ui.text import markup_text

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


def legend_rows(glyphs: Glyphs) -> list[tuple[str, str]]:
    """(glyph, meaning): one glyph per stage in the STAGES column, in the workflow's order."""
    return [
        (glyphs.none, "stage not run for this issue (yet)"),
        (f"{glyphs.reserved} {glyphs.preparing}", "reserved · preparing (workspace, hooks, prompt)"),
        (f"{glyphs.spinner[0]} {glyphs.running}", "running (spinner in the list, dot in a tab)"),
        (glyphs.completed, "completed"),
        (glyphs.failed, "failed (! lists every issue that needs attention)"),
        (glyphs.cancelled, "cancelled"),
        (f"{glyphs.retry}12s", "failed, retried in 12 s"),
        ("plan #2", "tab: the stage's 2nd session (numbered from the session files)"),
        ("‹ 2 · 3 ›", "tabs hidden left · right of the tab row (tab / shift+tab)"),
        ("backlog N", "issues no stage matches that never ran (b lists them)"),
    ]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "close"),
    ]

    def __init__(self, glyphs: Glyphs | None = None) -> None:
        super().__init__(classes="modal")
        self.glyphs = glyphs  # the legend of the list's glyphs, when given

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Static("[b]Keys[/]", classes="dialog-title")
            with VerticalScroll(), Grid(id="help-keys"):
                for key, text in help_rows():
                    yield Static(markup_text(key), classes="help-key")
                    yield Static(markup_text(text), classes="help-text")
                yield Static("[b]Legend[/]", classes="help-key")
                yield Static("", classes="help-text")
                for glyph, text in legend_rows(self.glyphs) if self.glyphs else ():
                    yield Static(markup_text(glyph), classes="help-key")
                    yield Static(markup_text(text), classes="help-text")
            yield Static("[$text-muted]esc, q or ? closes[/]", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
