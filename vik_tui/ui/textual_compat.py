"""Every use of a private Textual name, in one place, each for a reason no public API covers.

Textual is pinned to a range (`>=8.2.8,<9`), not one release. What the UI needs beyond the
public API is kept here, listed in `PRIVATE_NAMES`; `tests/test_textual_compat.py` checks each
one against the installed Textual and names the one a new release broke.

- `StreamLog`: a `Log` that agents write into ten times a second. A plain `Log` asks for a
  layout of the whole screen on every write (its `virtual_size` is declared `layout=True`)
  and measures each write's width in a new thread. Here the virtual size asks for no layout
  and the scrollbar is updated in place (`Widget._scroll_update`, what a layout would have
  run for this widget), and no width is measured (`Log._update_size`): the lines are clipped
  to the pane before they are written and the pane hides horizontal overflow.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import Log

# (class, attribute): the private names used below, checked by tests/test_textual_compat.py
PRIVATE_NAMES: tuple[tuple[type[Widget], str], ...] = (
    (Widget, "_scroll_update"),  # called: update the scrollbars for a new virtual size
    (Log, "_update_size"),  # overridden: Log.write_lines calls it with (updates, lines)
)


class StreamLog(Log):
    """A Log whose writes cost no screen layout and start no thread.

    Horizontal overflow must be hidden (`overflow-x: hidden`): no width is measured."""

    # declared again, without `layout=True`: only this widget's scrollbar depends on it
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    hold_scrollbar = False  # True while the text is replaced: update the scrollbar once, after

    def watch_virtual_size(self, size: Size) -> None:
        if not self.hold_scrollbar:
            self.update_scrollbar()

    def update_scrollbar(self) -> None:
        """What a layout would do for this widget: show, hide or resize its scrollbar."""
        if self.is_attached and self.container_size:
            self._scroll_update(self.virtual_size)

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        """A no-op: Log runs this in a new thread per write to measure the lines' width."""
