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
- `CellCacheTable`: a `DataTable` that renders a cell again only when the cell changed. A
  DataTable keys its render caches by a count of every update, so one changed cell re-renders
  every cell on screen (Rich's console, padding, cropping: 7 cells x 40 rows); with 100 agents
  running, every row's spinner and time move each second and the table was a third of the UI
  loop's samples. Here each cell's lines are kept with the cell value they were rendered from
  (`DataTable._render_cell` wrapped) and reused while the value, its place, width and styles
  are the same.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import DataTable, Log
from textual.widgets.data_table import CellDoesNotExist, CellType, ColumnKey, RowKey

# (class, attribute): the private names used below, checked by tests/test_textual_compat.py
PRIVATE_NAMES: tuple[tuple[type[Widget], str], ...] = (
    (Widget, "_scroll_update"),  # called: update the scrollbars for a new virtual size
    (Log, "_update_size"),  # overridden: Log.write_lines calls it with (updates, lines)
    (DataTable, "_render_cell"),  # wrapped: (row_index, column_index, base_style, width, cursor, hover)
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


class CellCacheTable(DataTable[CellType]):
    """A DataTable whose unchanged cells are not rendered again after another cell changed.

    A cell's lines are reused while the cell value is the same object (`update_cell` with a new
    value misses), at the same row and column index (its mouse metadata), with the same width,
    base style, cursor and hover flags and pseudo-classes (focus). A style change from outside
    (theme, CSS) drops them all; `drop_stale_renders()` lets the DataTable drop its own caches
    without dropping these. One entry per cell: `clear()` empties it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cell_lines: dict[tuple[RowKey, ColumnKey], tuple[object, tuple[object, ...], list[list[Segment]]]] = {}
        self._own_update = False

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        if row_index < 0 or column_index < 0:  # the header and row labels: a handful, rendered as they were
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        try:
            cell_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
            value = self.get_cell(cell_key.row_key, cell_key.column_key)
        except CellDoesNotExist:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        where = (cell_key.row_key, cell_key.column_key)
        params = (row_index, column_index, width, base_style, cursor, hover, self.get_pseudo_class_state())
        cached = self._cell_lines.get(where)
        if cached is not None and cached[0] is value and cached[1] == params:
            return cached[2]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_lines[where] = (value, params, lines)
        return lines

    def drop_stale_renders(self) -> None:
        """After cells changed: the DataTable's own caches hold renders keyed by an update count
        that will not come again; let them go at once (they are sized for 10,000 cells)."""
        self._own_update = True
        try:
            self.notify_style_update()
        finally:
            self._own_update = False

    def notify_style_update(self) -> None:
        if not self._own_update:
            self._cell_lines.clear()
        super().notify_style_update()

    def clear(self, columns: bool = False) -> CellCacheTable[CellType]:
        self._cell_lines.clear()
        super().clear(columns)
        return self
