"""The engine log pane: a small RichLog (max 1000 lines) with level colours.

A refresh's lines go in as one Text (one `write` call), the fast path measured for RichLog.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from vik_tui.ui.highlight import theme_color

MAX_LINES = 1000


class EventLog(RichLog):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, auto_scroll=True, **kwargs)
        self._styles: dict[str, Style] = {}

    def on_mount(self) -> None:
        self.restyle()

    def restyle(self) -> None:
        variables = self.app.theme_variables

        def color(name: str, fallback: str) -> Style:
            return Style(color=theme_color(variables, name, fallback))

        self._styles = {
            "error": color("error", "red") + Style(bold=True),
            "warning": color("warning", "yellow"),
            "debug": Style(dim=True),
        }

    def add(self, lines: list[tuple[str, str]]) -> None:
        """Append (level, text) lines in a single write."""
        if not lines:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (level, line) in enumerate(lines):
            if index:
                text.append("\n")
            stamp, _, rest = line.partition(" ")
            text.append(stamp + " ", Style(dim=True))
            text.append(rest, self._styles.get(level))
        self.write(text, scroll_end=None)
