"""One line of session tabs: `plan #1 ✓  implement #2 ●`, the active one highlighted.

A plain Static rather than Textual's Tabs: switching issues re-renders one line instead of
unmounting and mounting a tab widget per session, and when the labels do not fit the row says
so (`‹ 2` / `3 ›`) instead of scrolling them out of sight or cutting a label's first letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.message import Message
from textual.widgets import Static

from vik_tui.ui.text import markup_text

GAP = 2  # columns between labels


@dataclass(frozen=True, slots=True)
class Tab:
    key: str  # the session uuid
    text: str  # plain text: `plan #1 ✓`
    style: str  # theme variable of the state glyph, e.g. `$success`


def visible_window(widths: Sequence[int], active: int, room: int) -> tuple[int, int]:
    """[start, end) of the labels to show so that the active one is visible and the row fits
    `room` columns, leaving space for the `‹ N` / `N ›` markers of what is hidden."""
    count = len(widths)
    if count == 0:
        return 0, 0
    total = sum(widths) + GAP * (count - 1)
    if total <= room:
        return 0, count
    active = min(max(active, 0), count - 1)
    start = end = active
    used = widths[active]
    marker = 5  # `‹ 12 ` or ` 12 ›`
    while True:
        grown = False
        if end + 1 < count and used + GAP + widths[end + 1] + 2 * marker <= room:
            end += 1
            used += GAP + widths[end]
            grown = True
        if start > 0 and used + GAP + widths[start - 1] + 2 * marker <= room:
            start -= 1
            used += GAP + widths[start]
            grown = True
        if not grown:
            return start, end + 1


class TabRow(Static):
    """Call `show(tabs, active)`; it repaints only when what it shows changed."""

    class Clicked(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=True, **kwargs)
        self._tabs: tuple[Tab, ...] = ()
        self._active: str | None = None
        self._spans: list[tuple[int, int, str]] = []  # (x0, x1, key) of the shown labels
        self._last = ""

    @property
    def tabs(self) -> tuple[Tab, ...]:
        return self._tabs

    def show(self, tabs: Sequence[Tab], active: str | None) -> None:
        self._tabs, self._active = tuple(tabs), active
        self._render_row()

    def on_resize(self) -> None:
        self._render_row()

    def _render_row(self) -> None:
        tabs = self._tabs
        room = self.size.width or 200
        widths = [cell_len(tab.text) + 2 for tab in tabs]  # one space of padding each side
        index = next((i for i, tab in enumerate(tabs) if tab.key == self._active), len(tabs) - 1)
        start, end = visible_window(widths, index, room)
        parts: list[str] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        if start > 0:
            marker = f"‹ {start} "
            parts.append(f"[$text-muted]{marker}[/]")
            x += cell_len(marker)
        for i in range(start, end):
            tab = tabs[i]
            if i > start:
                parts.append(" " * GAP)
                x += GAP
            name, _, glyph = tab.text.rpartition(" ")
            body = f" {markup_text(name)} [{tab.style}]{markup_text(glyph)}[/] "
            if tab.key == self._active:
                parts.append(f"[b reverse]{body}[/]")
            else:
                parts.append(f"[$text-muted]{body}[/]")
            spans.append((x, x + widths[i], tab.key))
            x += widths[i]
        if end < len(tabs):
            parts.append(f"[$text-muted] {len(tabs) - end} ›[/]")
        text = "".join(parts)
        self._spans = spans
        if text != self._last:
            self._last = text
            self.update(text, layout=False)

    def on_click(self, event: events.Click) -> None:
        for x0, x1, key in self._spans:
            if x0 <= event.x < x1:
                self.post_message(self.Clicked(key))
                return
